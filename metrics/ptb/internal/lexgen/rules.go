package lexgen

// The token grammar of CoreNLP 3.4.1's PTBLexer.flex, rule by rule, in the
// same order (which decides ties between equally long matches). Macro names
// are the spec's. The lexer runs in its YyTraditionalTreebank3 state
// (strictTreebank3=false), so the <YyStrictlyTreebank3> FRACSTB3 rule is left
// out.
//
// Two JFlex details matter throughout. %caseless makes every literal
// character outside a [...] class match either case (see caseless), while
// classes stay case-sensitive, so [A-Z] is upper case only and [A]bout only
// matches "About". And in the LIKELYURL class "[...{},-_$]" the ",-_" is a
// range (U+002C..U+005F, digits and capitals included), which is how JFlex
// reads it.

// action says what a rule does with its match. It is the name of the
// constant in package ptb (lexer.go) that the generated rule table uses and
// whose case in the scanner's act performs it.
type action string

const (
	actKeep        action = "actKeep"
	actSkip        action = "actSkip"
	actNewline     action = "actNewline"
	actFixed       action = "actFixed"
	actPushback2   action = "actPushback2"
	actPushback3   action = "actPushback3"
	actNBSP        action = "actNBSP"
	actAmp         action = "actAmp"
	actSoftHyphens action = "actSoftHyphens"
	actQuoteLeft   action = "actQuoteLeft"
	actQuoteRight  action = "actQuoteRight"
	actFraction    action = "actFraction"
	actCurrency    action = "actCurrency"
	actAcronym     action = "actAcronym"
	actAbbrevEnd   action = "actAbbrevEnd"
	actPhone       action = "actPhone"
	actParens      action = "actParens"
	actHyphens     action = "actHyphens"
)

type rule struct {
	name  string // the spec's rule, for tests and debugging
	pat   *expr  // what becomes yytext
	look  *expr  // trailing context (r1/r2), or nil
	act   action
	fixed string // the text of actFixed
}

// ranges parses a JFlex class body of non-ASCII characters and lo-hi ranges.
func ranges(s string) cset {
	rs := []rune(s)
	var c cset
	for i := 0; i < len(rs); i++ {
		lo, hi := rs[i], rs[i]
		if i+2 < len(rs) && rs[i+1] == '-' {
			hi = rs[i+2]
			i += 2
		}
		c = append(c, span{uint16(lo), uint16(hi)})
	}
	return norm(c)
}

// grammar returns the rules of PTBLexer.flex for the options PTBTokenizer's
// main method uses with -preserveLines (tokenizeNLs; everything else at its
// default: ptb3Escaping, no americanize, untokenizable=firstDelete).
func grammar() []rule {
	anyUnit := class(cset{{0, 0xFFFF}}) // [^]
	upperAZ := between('A', 'Z')
	lowerAZ := between('a', 'z')
	azAZ := union(upperAZ, lowerAZ)
	d09 := between('0', '9')
	alnum := union(azAZ, d09)
	letter := class(jflexLetter) // [:letter:]
	digitC := class(jflexDigit)  // [:digit:]
	letterOrDigit := class(union(jflexLetter, jflexDigit))
	negOf := func(s string) *expr { return class(not(chars(s))) }

	// SGML: a start, end or declaration tag on one line (attribute values
	// may span lines).
	tagName := seq(class(azAZ), star(class(union(alnum, chars("_:.-")))))
	sp := cls(" ")
	quoted := alt(seq(lit("'"), star(negOf("'")), lit("'")), seq(lit("\""), star(negOf("\"")), lit("\"")))
	sgml := seq(lit("<"), alt(
		seq(cls("!?"), class(union(azAZ, chars("-"))), star(negOf(">\r\n"))),
		seq(tagName, star(seq(plus(sp), alt(tagName, seq(tagName, star(sp), lit("="), star(sp), quoted)))), star(sp), opt(lit("/"))),
		seq(lit("/"), tagName),
	), star(sp), lit(">"))

	spmdash := alt(seq(lit("&"), words("MD mdash ndash"), lit(";")), class(ranges("\u0096\u0097\u2013\u2014\u2015")))
	spamp := lit("&amp;")
	sppunc := seq(lit("&"), alt(words("HT TL UR LR QC QL QR odq cdq"), seq(lit("#"), plus(class(d09)))), lit(";"))
	splet := seq(lit("&"), cls("aeiouAEIOU"), words("acute grave uml"), lit(";"))

	spaceSet := union(chars(" \t\u00A0\u3000"), between(0x2000, 0x200A))
	space := class(spaceSet)
	spaces := plus(space)
	newline := alt(lit("\r"), seq(opt(lit("\r")), lit("\n")), lit("\u2028"), lit("\u2029"), lit("\u000B"), lit("\u000C"), lit("\u0085"))
	spacenl := alt(space, newline)
	spacenls := plus(spacenl)
	sentend := seq(spacenl, alt(spacenl, class(jflexUpper), sgml))

	digit := class(union(jflexDigit, between(0x07C0, 0x07C9)))
	date := seq(rep(digit, 1, 2), cls("-/"), rep(digit, 1, 2), cls("-/"), rep(digit, 2, 4))
	num := alt(plus(digit), seq(star(digit), plus(seq(cls(".:,\u00AD\u066B\u066C"), plus(digit)))))
	number := seq(opt(cls("-+")), num)
	subsupnum := seq(opt(cls("\u207A\u207B\u208A\u208B")), alt(plus(class(union(chars("\u2070\u00B9\u00B2\u00B3"), between(0x2074, 0x2079)))), plus(class(between(0x2080, 0x2089)))))
	frac := seq(opt(seq(rep(digit, 1, 4), cls("- \u00A0"))), rep(digit, 1, 4), alt(seq(opt(lit("\\")), lit("/")), lit("\u2044")), rep(digit, 1, 4))
	frac2 := class(union(chars("\u00BC\u00BD\u00BE"), between(0x2153, 0x215E)))
	dolsign := alt(seq(star(class(upperAZ)), lit("$")), lit("#"))
	dolsign2 := class(ranges("\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0\uFFE1\uFFE5\uFFE6"))

	// LETTER: [:letter:], SPLET, and marks and letters JFlex's
	// [:letter:] lacked.
	letterX := alt(letter, splet, class(ranges("\u00AD\u0237-\u024F\u02C2-\u02C5\u02D2-\u02DF\u02E5-\u02FF\u0300-\u036F\u0370-\u037D\u0384\u0385\u03CF\u03F6\u03FC-\u03FF\u0483-\u0487\u04CF\u04F6-\u04FF\u0510-\u0525\u055A-\u055F\u0591-\u05BD\u05BF\u05C1\u05C2\u05C4\u05C5\u05C7\u0615-\u061A\u063B-\u063F\u064B-\u065E\u0670\u06D6-\u06EF\u06FA-\u06FF\u070F\u0711\u0730-\u074F\u0750-\u077F\u07A6-\u07B1\u07CA-\u07F5\u07FA\u0900-\u0903\u093C\u093E-\u094E\u0951-\u0955\u0962-\u0963\u0981-\u0983\u09BC-\u09C4\u09C7\u09C8\u09CB-\u09CD\u09D7\u09E2\u09E3\u0A01-\u0A03\u0A3C\u0A3E-\u0A4F\u0A81-\u0A83\u0ABC-\u0ACF\u0B82\u0BBE-\u0BC2\u0BC6-\u0BC8\u0BCA-\u0BCD\u0C01-\u0C03\u0C3E-\u0C56\u0D3E-\u0D44\u0D46-\u0D48\u0E30-\u0E3A\u0E47-\u0E4E\u0EB1-\u0EBC\u0EC8-\u0ECD")))
	letterDigit := alt(letterX, digit)
	word := seq(letterX, star(letterDigit), star(seq(cls(".!?"), letterX, star(letterDigit))))
	filename := seq(plus(letterDigit), star(seq(lit("."), plus(letterDigit))), lit("."),
		words("bat bmp c class cgi cpp dll doc docx exe gif gz h htm html jar java jpeg jpg mov mp3 pdf php pl png ppt ps py sql tar txt wav x xml zip"))

	apos := alt(cls("'\u0092\u2019"), lit("&apos;"))
	aposEtc := alt(apos, cls("`\u0091\u2018\u201B"))
	hyphen := cls("-_\u058A\u2010\u2011")
	dol := seq(cls("dDoOlL"), aposEtc, letterOrDigit) // THING's d', o', l' prefix
	thing := seq(opt(dol), plus(letterOrDigit), star(seq(hyphen, opt(dol), plus(letterOrDigit))))
	thinga := seq(plus(class(upperAZ)), plus(seq(alt(cls("+&"), spamp), plus(class(upperAZ)))))
	azHyph := rep(seq(lit("-"), plus(class(azAZ))), 0, 2)
	thing3 := seq(plus(class(alnum)), azHyph, rep(seq(opt(lit("\\")), lit("/"), plus(class(alnum)), azHyph), 1, 2))

	acroLetters := seq(lit("U.S.-"), alt(lit("U.K"), lit("U.S.S.R")))
	acroHyph := seq(words("Canada Sino Korean EU Japan non"), lit("-U.S"))
	acro := alt(seq(class(azAZ), star(seq(lit("."), class(azAZ)))), acroHyph, acroLetters)
	acro2 := alt(seq(class(azAZ), plus(seq(lit("."), class(azAZ)))), acroHyph, acroLetters)

	hthing := seq(class(alnum), star(class(union(alnum, chars(".,\u00AD")))),
		plus(seq(lit("-"), alt(plus(class(union(alnum, chars("\u00AD")))), seq(acro2, lit("."))))))
	redaux := seq(apos, alt(cls("msdMSD"), words("re ve ll")))
	sword := seq(star(class(union(azAZ, chars("\u00AD")))), class(union(between('A', 'M'), between('O', 'Z'), between('a', 'm'), between('o', 'z'))), star(lit("\u00AD")))
	sredaux := seq(lit("n"), aposEtc, lit("t"))

	apoword := alt(
		seq(apos, lit("n"), opt(apos)),
		seq(cls("lLdDjJ"), apos),
		seq(lit("Dunkin"), apos), seq(lit("somethin"), apos), seq(lit("ol"), apos),
		seq(apos, lit("em")),
		seq(class(union(between('A', 'H'), between('J', 'X'), chars("Zn"))), aposEtc, letter, letter, star(letter)),
		seq(apos, class(between('2', '9')), lit("0s")),
		seq(apos, lit("til"), opt(lit("l"))),
		seq(letter, star(letter), cls("aeiouyAEIOUY"), aposEtc, class(union(chars("aeiou"), upperAZ)), star(letter)),
		seq(apos, lit("cause")),
		seq(lit("cont'd"), opt(lit("."))),
		words("'twas nor'easter c'mon e'er s'mores ev'ry li'l nat'l"),
		seq(lit("O"), aposEtc, lit("o")),
	)
	apoword2 := seq(lit("y"), apos)

	fullurl := seq(lit("http"), opt(lit("s")), lit("://"), plus(negOf(" \t\n\f\r\"<>|(){}")), negOf(" \t\n\f\r\"<>|.!?(){},-"))
	likelyurl := seq(alt(
		seq(lit("www."), plus(seq(plus(negOf(" \t\n\f\r\"<>|.!?(){},")), lit("."))), rep(class(azAZ), 2, 4)),
		seq(plus(seq(plus(class(not(union(chars(" \t\n\f\r\"`'<>|.!?(){}$"), between(',', '_'))))), lit("."))), words("com net org edu")),
	), opt(seq(lit("/"), plus(negOf(" \t\n\f\r\"<>|()")), negOf(" \t\n\f\r\"<>|.!?(){},-"))))
	emailPart := plus(negOf(" \t\n\f\r\"<>|(){}.\u00A0"))
	email := seq(opt(alt(lit("&lt;"), lit("<"))), class(alnum), star(negOf(" \t\n\f\r\"<>|()\u00A0{}")), lit("@"),
		star(seq(emailPart, lit("."))), emailPart, opt(alt(lit("&gt;"), lit(">"))))
	twitter := alt(
		seq(lit("@"), class(union(azAZ, chars("_"))), star(class(union(alnum, chars("_"))))),
		seq(lit("#"), plus(letterX)))

	abbrev1 := seq(alt(
		words("Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec"),       // ABMONTH
		words("Mon Tue Tues Wed Thu Thurs Fri"),                         // ABDAYS
		words("Ala Ariz Calif Colo Conn Ct Dak Fla Ga Ind Kan Kans Ky"), // ABSTATE, caseless part
		words("Md Mich Minn Mo Mont Neb Nev Okla Penn Tenn Va Vt Wis Wisc Wyo"),
		seq(cls("A"), lit("z")), seq(cls("A"), lit("rk")), seq(cls("D"), lit("el")), seq(cls("I"), lit("ll")),
		seq(cls("L"), lit("a")), seq(cls("M"), lit("ass")), seq(cls("M"), lit("iss")), seq(cls("O"), lit("re")),
		seq(cls("P"), lit("a")), seq(cls("T"), lit("ex")), seq(cls("W"), lit("ash")),
		words("Inc Co Cos Corp Ltd Plc Rt Bancorp Bhd Assn Univ Intl Sys"), // ABCOMP
		seq(lit("P"), opt(lit("p")), lit("t"), cls("ye"), opt(lit("s"))),   // ABCOMP Pp?t[ye]s?
		words("tel est ext sq"),                   // ABNUM
		words("Jr Sr Bros Ed.D Ph.D Blvd Rd Esq"), // ABPTIT
		words("etc al seq Bldg"),
	), lit("."))
	abtitle := alt(
		words("Mr Mrs Ms Dr Drs Prof Profs Sen Sens Rep Reps Atty Attys Lt Col Gen Messrs Gov Govs Adm Rev Maj Sgt Cpl Pvt Capt St Ste Ave Pres Lieut Hon Brig Cmdr Comdr Pfc Spc Supt Supts Det Mt Ft Adj Adv Asst Assoc Ens Insp Mlle Mme Msgr Sfc"),
		seq(cls("M"), lit("iss")))
	abcomp2 := alt(words("Invt Elec Natl Dept"), seq(lit("M"), cls("ft"), lit("g")))
	abbrev4 := alt(abtitle, words("vs Alex Wm Jos Cie a.k.a cf TREAS Ph"), acro, abcomp2)
	abbrev2 := seq(abbrev4, lit("."))
	acronym := seq(acro, lit("."))
	abbrev3 := seq(words("ca fig figs prop no nos art bldg pp op"), lit("."))

	// ACRONYM's trailing context: white space, then a word that usually
	// starts a sentence (first letter upper case only), then white space.
	sentStart := alt(
		seq(cls("A"), words("bout ccording dditionally fter n s t")), cls("A"),
		seq(cls("B"), lit("ut")), seq(cls("E"), lit("arlier")),
		seq(cls("H"), words("e er ere owever")), seq(cls("I"), words("f n t")),
		seq(cls("L"), lit("ast")), seq(cls("M"), words("any ore r. s.")),
		seq(cls("N"), lit("ow")), seq(cls("O"), words("nce ne ther ur")),
		seq(cls("S"), words("he ince o ome uch")),
		seq(cls("T"), words("hat he heir hen here hese hey his")),
		seq(cls("W"), words("e hen hile hat")), seq(cls("Y"), words("et ou")),
		sgml)

	ph3 := func(lo, hi int) *expr { return rep(class(d09), lo, hi) }
	phSep := cls("- \u00A0")
	plusPlus := opt(seq(lit("+"), opt(lit("+"))))
	phone := alt(
		seq(alt(
			seq(lit("("), ph3(2, 3), lit(")"), opt(cls(" \u00A0"))),
			seq(plusPlus, opt(seq(ph3(2, 4), phSep)), ph3(2, 4), phSep),
		), ph3(3, 4), opt(phSep), ph3(3, 5)),
		seq(opt(seq(plusPlus, ph3(2, 4), lit("."))), ph3(2, 4), lit("."), ph3(3, 4), lit("."), ph3(3, 5)),
	)

	ldots := alt(rep(lit("."), 3, 5), seq(rep(seq(lit("."), cls(" \u00A0")), 2, 4), lit(".")), cls("\u0085\u2026"))
	fnmarks := alt(plus(lit("@")), plus(lit("#")), plus(lit("_")))
	asts := alt(plus(lit("*")), rep(lit("\\*"), 1, 3))
	insentp := cls(",;:\u3001")
	quotes := alt(apos, lit("''"), rep(cls("`\u2018\u2019\u201A\u201B\u201C\u201D\u0091\u0092\u0093\u0094\u201E\u201F\u2039\u203A\u00AB\u00BB"), 1, 2))
	dblquot := alt(lit("\""), lit("&quot;"))
	sAmp := alt(lit("&"), spamp)
	tbspec := alt(
		seq(lit("-"), words("RRB LRB RCB LCB RSB LSB"), lit("-")),
		lit("C.D.s"), lit("pro-"), lit("anti-"),
		seq(lit("S"), sAmp, lit("P-500")), seq(lit("S"), sAmp, lit("Ls")),
		seq(lit("Cap"), apos, lit("n")), seq(lit("c"), apos, lit("est")))
	tbspec2 := seq(apos, class(d09), class(d09))

	smiley := seq(opt(cls("<>")), cls(":;="), opt(cls("-o*'")), cls("()DPdpO\\{@|[]"))
	// The first ASIANSMILEY alternative is written [\^x=~<>]\.\[\^x=~<>] in
	// the spec: after "\[" the class is over, so JFlex reads the rest as
	// literals ^ x = with ~< ("anything up to the first <") and > ].
	face := cls("^x=~<>'-")
	asian := alt(
		seq(cls("^x=~<>"), lit("."), lit("["), lit("^"), lit("x"), lit("="), star(negOf("<")), lit("<"), lit(">"), lit("]")),
		seq(face, lit("_"), face),
		seq(lit("("), face, opt(cls("_.")), face, lit(")")),
		seq(lit("("), cls("^x=~<>'"), lit("-"), cls("^x=~<>'`"), lit(")")),
	)
	miscsymbol := class(ranges("+%&~^|\\¦\u00A7¨\u00A9\u00AC\u00AE¯\u00B0-\u00B3\u00B4-\u00BA\u00D7\u00F7\u0387\u05BE\u05C0\u05C3\u05C6\u05F3\u05F4\u0600-\u0603\u0606-\u060A\u060C\u0614\u061B\u061E\u066A\u066D\u0703-\u070D\u07F6\u07F7\u07F8\u0964\u0965\u0E4F\u1FBD\u2016\u2017\u2020-\u2023\u2030-\u2038\u203B\u203E-\u2042\u2044\u207A-\u207F\u208A-\u208E\u2100-\u214F\u2190-\u21FF\u2200-\u2BFF\u3012\u30FB\uFF01-\uFF0F\uFF1A-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65\uFF65"))

	r := func(name string, pat, look *expr, act action) rule {
		return rule{name: name, pat: pat, look: look, act: act}
	}
	fixed := func(name string, pat *expr, text string) rule {
		return rule{name: name, pat: pat, act: actFixed, fixed: text}
	}
	return []rule{
		r("c++", seq(lit("c"), cls("+"), cls("+")), nil, actKeep),
		r("c#", seq(cls("cfCF"), lit("#")), nil, actKeep),
		r("cannot", lit("cannot"), nil, actPushback3),
		r("'twas", lit("'twas"), nil, actPushback3),
		r("'tis", lit("'tis"), nil, actPushback2),
		r("gonna", words("gonna gotta lemme gimme wanna"), nil, actPushback2),
		r("SGML", sgml, nil, actNBSP),
		fixed("SPMDASH", spmdash, "--"),
		r("SPAMP", spamp, nil, actAmp),
		r("SPPUNC", sppunc, nil, actKeep),
		r("WORD/REDAUX", word, redaux, actSoftHyphens),
		r("SWORD/SREDAUX", sword, sredaux, actSoftHyphens),
		r("WORD", word, nil, actSoftHyphens),
		r("APOWORD", apoword, nil, actKeep),
		r("APOWORD2", apoword2, letter, actKeep),
		r("FULLURL", fullurl, nil, actKeep),
		r("LIKELYURL", likelyurl, nil, actKeep),
		r("EMAIL", email, nil, actKeep),
		r("TWITTER", twitter, nil, actKeep),
		r("REDAUX/[^A-Za-z]", redaux, class(not(azAZ)), actQuoteRight),
		r("SREDAUX/[^A-Za-z]", sredaux, class(not(azAZ)), actQuoteRight),
		r("DATE", date, nil, actKeep),
		r("NUMBER", number, nil, actSoftHyphens),
		r("SUBSUPNUM", subsupnum, nil, actKeep),
		r("FRAC", frac, nil, actNBSP),
		r("FRAC2", frac2, nil, actFraction),
		r("TBSPEC", tbspec, nil, actAmp),
		r("THING3", thing3, nil, actKeep),
		r("DOLSIGN", dolsign, nil, actKeep),
		r("DOLSIGN2", dolsign2, nil, actCurrency),
		r("ACRONYM", acronym, seq(spacenls, sentStart, spacenl), actAcronym),
		r("ABBREV3", abbrev3, seq(opt(spacenl), digitC), actKeep),
		r("pty.", seq(alt(seq(lit("pt"), cls("eyEY")), lit("co")), lit(".")), seq(space, words("ltd lim")), actKeep),
		r("ABBREV1/SENTEND", abbrev1, sentend, actAbbrevEnd),
		r("ABBREV1/[^][^]", abbrev1, seq(anyUnit, anyUnit), actKeep),
		r("ABBREV1", abbrev1, nil, actAbbrevEnd),
		r("ABBREV2", abbrev2, nil, actKeep),
		r("ABBREV4/SPACE", abbrev4, space, actKeep),
		r("ACRO/SPACENL", acro, spacenl, actKeep),
		r("TBSPEC2/SPACENL", tbspec2, spacenl, actKeep),
		r("FILENAME", filename, alt(spacenl, cls(".?!,")), actKeep),
		r("WORD./INSENTP", seq(word, lit(".")), insentp, actSoftHyphens),
		r("PHONE", phone, nil, actPhone),
		r("DBLQUOT/[A-Za-z0-9$]", dblquot, class(union(alnum, chars("$"))), actQuoteLeft),
		r("DBLQUOT", dblquot, nil, actQuoteRight),
		r("DEL", cls("\x7f"), nil, actSkip),
		fixed("LESSTHAN", alt(lit("<"), lit("&lt;")), "<"),
		fixed("GREATERTHAN", alt(lit(">"), lit("&gt;")), ">"),
		r("SMILEY", smiley, class(not(alnum)), actParens),
		r("ASIANSMILEY", asian, nil, actParens),
		fixed("{", lit("{"), "-LCB-"),
		fixed("}", lit("}"), "-RCB-"),
		fixed("[", lit("["), "-LSB-"),
		fixed("]", lit("]"), "-RSB-"),
		fixed("(", lit("("), "-LRB-"),
		fixed(")", lit(")"), "-RRB-"),
		r("HYPHENS", plus(lit("-")), nil, actHyphens),
		fixed("LDOTS", ldots, "..."),
		r("FNMARKS", fnmarks, nil, actKeep),
		r("ASTS", asts, nil, actKeep),
		r("INSENTP", insentp, nil, actKeep),
		r("[?!]+", plus(cls("?!")), nil, actKeep),
		r("PERIOD", cls(".¡¿\u037E\u0589\u061F\u06D4\u0700\u0701\u0702\u07FA\u3002"), nil, actKeep),
		r("=", lit("="), nil, actKeep),
		r("/", lit("/"), nil, actKeep),
		r("HTHING./INSENTP", seq(hthing, lit(".")), insentp, actSoftHyphens),
		r("HTHING", hthing, nil, actSoftHyphens),
		r("THING./INSENTP", seq(thing, lit(".")), insentp, actKeep),
		r("THING", thing, nil, actKeep),
		r("THINGA./INSENTP", seq(thinga, lit(".")), insentp, actAmp),
		r("THINGA", thinga, nil, actAmp),
		r("'/[A-Za-z][^ \\t\\n\\r\\u00A0]", lit("'"), seq(class(azAZ), negOf(" \t\n\r\u00A0")), actQuoteLeft),
		r("REDAUX", redaux, nil, actQuoteRight),
		r("SREDAUX", sredaux, nil, actQuoteRight),
		r("QUOTES", quotes, nil, actQuoteRight),
		r("FAKEDUCKFEET", alt(lit("<<"), lit(">>")), nil, actKeep),
		r("MISCSYMBOL", miscsymbol, nil, actKeep),
		r("SPACES", alt(lit("\x00"), spaces, cls("\u200B\u200E\u200F\uFEFF")), nil, actSkip),
		r("NEWLINE", newline, nil, actNewline),
		r("&nbsp;", lit("&nbsp;"), nil, actSkip),
		r("untokenizable", negOf("\n"), nil, actSkip),
	}
}
