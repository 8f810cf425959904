package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"herald/subscribers"
)

// cliService opens the database and a subscribers service for CLI verbs.
func cliService(e *env) (*app, int) {
	cfg, ok := loadConfig(e)
	if !ok {
		return nil, 2
	}
	log := newLogger(cfg, e.stderr)
	a, err := buildApp(e.ctx, cfg, log)
	if err != nil {
		return nil, fail(e, "%v", err)
	}
	return a, 0
}

func cmdExport(e *env, args []string) int {
	fs := flag.NewFlagSet("subscribers export", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: herald subscribers export > subscribers.csv\n\nWrites every subscriber (erased ones excepted) as CSV on stdout, with the\nheader row: email,status,subscriptions,created_at,confirmed_at,source.\nsubscriptions is space-separated section:frequency pairs.")
	}
	if err := fs.Parse(args); err != nil {
		return exitFlag(err)
	}
	a, code := cliService(e)
	if a == nil {
		return code
	}
	defer a.close()
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	n, err := a.subs.ExportCSV(e.ctx, w)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return fail(e, "subscribers export: %v", err)
	}
	fmt.Fprintf(e.stderr, "exported %d subscribers\n", n)
	return 0
}

func cmdImport(e *env, args []string) int {
	fs := flag.NewFlagSet("subscribers import", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	send := fs.Bool("send-confirmations", false, "queue an opt-in email to each imported pending row")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: herald subscribers import [--send-confirmations] FILE.csv\n\nImports subscribers from CSV with the export's columns (only email is\nrequired; status defaults to pending; active rows need confirmed_at, their\nproof of consent, and are recorded as an import consent event). Rows that\ncannot be imported are reported with their line numbers; the rest are\nimported. Known and suppressed addresses are skipped, never overwritten.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitFlag(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fail(e, "subscribers import: %v", err)
	}
	defer f.Close()
	a, code := cliService(e)
	if a == nil {
		return code
	}
	defer a.close()
	res, err := a.subs.ImportCSV(e.ctx, bufio.NewReaderSize(f, 64<<10), subscribers.ImportOptions{
		SendConfirmations: *send,
		Report: func(line int, msg string) {
			fmt.Fprintf(e.stderr, "line %d: %s\n", line, msg)
		},
	})
	if err != nil {
		return fail(e, "subscribers import: %v", err)
	}
	fmt.Fprintf(e.stdout, "imported %d, skipped %d, failed %d, confirmations queued %d\n", res.Imported, res.Skipped, res.Failed, res.Queued)
	if res.Queued > 0 {
		fmt.Fprintln(e.stdout, "the confirmation emails go out when herald serve runs")
	}
	if res.Failed > 0 {
		return 1
	}
	return 0
}
