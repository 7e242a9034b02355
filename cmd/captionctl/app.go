package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/model"
)

// Exit codes: part of the command-line contract, never renumbered.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitBadInput    = 3
	exitInterrupted = 130
)

const exitCodesHelp = `EXIT CODES:
   0    success
   1    failure
   2    bad usage or invalid flags
   3    bad input data (unreadable or malformed file; the message names the file and where)
   130  interrupted (Ctrl-C or SIGTERM); nothing is left half-written`

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// it comes from the module's build information.
var version = ""

func buildVersion() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if v == "" && ok {
		v = info.Main.Version
	}
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	if ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}

// usageError marks a command-line mistake (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func onUsageError(_ *cli.Context, err error, _ bool) error { return usageError{err} }

// newApp builds the command-line application writing results to stdout and
// messages to stderr.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:    "captionctl",
		Usage:   "train, evaluate and run image captioning models (Show, Attend and Tell) in one binary",
		Version: buildVersion(),
		Description: "captionctl scores captions exactly as the COCO caption toolkit does (BLEU, METEOR, ROUGE-L, CIDEr-D),\n" +
			"with no Python and no Java. stdout carries results only; messages go to stderr.",
		Writer:                 stdout,
		ErrWriter:              stderr,
		HideHelpCommand:        true,
		UseShortOptionHandling: false,
		OnUsageError:           onUsageError,
		// Exit codes are decided once, in run; urfave/cli must not exit.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			captionCommand(),
			dataCommand(),
			demoCommand(),
			evalCommand(),
			licensesCommand(),
			trainCommand(),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown command %q: run 'captionctl --help' for the list of commands", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
	app.CustomAppHelpTemplate = cli.AppHelpTemplate + "\n" + exitCodesHelp + "\n"
	for _, cmd := range app.Commands {
		setUsageErrors(cmd)
	}
	return app
}

func setUsageErrors(cmd *cli.Command) {
	cmd.OnUsageError = onUsageError
	template := cli.CommandHelpTemplate
	if len(cmd.Subcommands) > 0 {
		template = cli.SubcommandHelpTemplate
	}
	cmd.CustomHelpTemplate = template + "\n" + exitCodesHelp + "\n"
	for _, sub := range cmd.Subcommands {
		setUsageErrors(sub)
	}
}

// run executes the app and turns its outcome into an exit code, printing
// any error to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).RunContext(ctx, args)
	code := exitCode(ctx, err)
	if err != nil {
		switch code {
		case exitInterrupted:
			fmt.Fprintln(stderr, "captionctl: interrupted")
		case exitUsage:
			fmt.Fprintf(stderr, "captionctl: %v\nRun 'captionctl --help' or 'captionctl COMMAND --help' for usage.\n", err)
		default:
			fmt.Fprintf(stderr, "captionctl: %v\n", err)
		}
	}
	return code
}

func exitCode(ctx context.Context, err error) int {
	var bad *badinput.Error
	var badWeights *model.WeightsError
	var usage usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return exitInterrupted
	case errors.As(err, &usage):
		return exitUsage
	case errors.As(err, &bad), errors.As(err, &badWeights):
		return exitBadInput
	}
	return exitFailure
}
