package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/captionctl/captionctl/metrics/meteor"
)

func licensesCommand() *cli.Command {
	return &cli.Command{
		Name:  "licenses",
		Usage: "print the licence notices of the data built into captionctl",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("licenses takes no arguments")
			}
			_, err := fmt.Fprintf(c.App.Writer, "%s\n\n%s\n\n%s\n", meteorLicenceIntro, meteor.Notices(), fontNotice)
			return err
		},
	}
}

const meteorLicenceIntro = `captionctl's METEOR embeds the English resources of Meteor 1.5
(https://www.cs.cmu.edu/~alavie/METEOR/, cmu-mtlab/meteor): the function-word
list and the synonym data. Meteor is free software under the GNU Lesser
General Public License, version 2.1. The synonym data is derived from
WordNet 3.0 and comes with this notice:`

const fontNotice = `The training curves (curves.png) are drawn with gonum.org/v1/plot, which
embeds the Liberation fonts (codeberg.org/go-fonts/liberation), licensed
under the SIL Open Font License, version 1.1.`
