// Package meteor computes METEOR exactly as the COCO caption evaluation
// toolkit does (pycocoevalcap's meteor/meteor.py driving Meteor 1.5 with
// "java -jar meteor-1.5.jar - - -stdio -l en -norm"), in pure Go, with the
// English resources embedded.
//
// # What the toolkit computes
//
// For every image the wrapper sends "SCORE ||| ref1 ||| … ||| hyp" (it
// deletes "|||" from the hypothesis and halves double spaces; references
// go as they are). Meteor normalizes each segment (Normalizer, then
// lowercasing), aligns the hypothesis to every reference and returns the
// sufficient statistics of the first reference with the highest score
// (Scorer.Stats, type Stats). The wrapper then sends all statistics in one
// "EVAL" line; Meteor answers with the score of each (Stats.Score, the
// per-image values) and the score of their sum (CorpusScore, the corpus
// METEOR, which is not the mean of the per-image scores).
//
// # Alignment
//
// Words are matched by modules, in order: exact (same word), stem (same
// Snowball English stem, the 2010-era englishStemmer bundled with Meteor),
// synonym (a shared WordNet 3.0 synset, also through WordNet's irregular
// forms and detachment rules) and, when a paraphrase table is supplied,
// paraphrase (phrase pairs from paraphrase-en.gz). Matches that are the
// only candidate for both of their words are fixed; the rest are resolved
// by Meteor's left-to-right beam search (beam 40), which ranks partial
// alignments by weighted matched words (exact 1, others 0.5, truncated to
// an integer at every step), then fewer chunks, then smaller distance.
// The port keeps every quirk that can change a result, including Java's
// String.hashCode as the word identity and the search's distance
// bookkeeping; see align.go.
//
// # Score
//
// With the English "rank" parameters α = 0.85, β = 0.20, γ = 0.60,
// δ = 0.75 and module weights w = (1.0, 0.6, 0.8, 0.6) for exact, stem,
// synonym and paraphrase, for hypothesis (test) and reference sides:
//
//	P = Σ_k w_k (δ·tc_k + (1−δ)·tf_k) / (δ·(|test| − |test function words|) + (1−δ)·|test function words|)
//	R = Σ_k w_k (δ·rc_k + (1−δ)·rf_k) / (δ·(|ref| − |ref function words|) + (1−δ)·|ref function words|)
//	Fmean = 1 / ((1−α)/P + α/R)
//	frag = chunks / ((matched test words + matched ref words) / 2)   (0 when everything is one chunk)
//	METEOR = Fmean · (1 − γ·frag^β)   (0 when undefined)
//
// where tc_k/tf_k (rc_k/rf_k) count the content and function words of the
// hypothesis (reference) matched by module k; function words are those of
// Meteor's english.words. The corpus score applies the same formula to the
// summed statistics, leaving out the single chunk of perfectly matched
// segments.
//
// Without a paraphrase table the modules are exact, stem and synonym: the
// score the oracle cases record as METEOR_exact_stem_synonym. The canonical
// toolkit METEOR also uses the paraphrase module; pass Meteor's
// paraphrase-en.gz in Options.ParaphraseFile to get it.
//
// A Scorer is safe for concurrent use; callers score images in parallel and
// keep the results in evaluation order for CorpusScore.
package meteor
