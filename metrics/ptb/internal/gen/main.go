// Command gen writes the compiled token grammar of package ptb
// (lexer_tables.go) from internal/lexgen. Package ptb's go:generate runs
// it in ptb's directory.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/captionctl/captionctl/metrics/ptb/internal/lexgen"
)

func main() {
	out := flag.String("o", "lexer_tables.go", "output file")
	flag.Parse()
	if err := os.WriteFile(*out, lexgen.Source(), 0o666); err != nil {
		log.Fatal(err)
	}
}
