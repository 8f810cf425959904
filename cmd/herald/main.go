// Command herald runs Herald: the web server, the signup committer and the
// delivery workers in one process (herald serve), and the admin verbs.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// env is the process environment seen by the CLI (os.Getenv in main).
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

type command struct {
	name    string
	summary string
	run     func(e *env, args []string) int
}

func commands() []command {
	return []command{
		{"serve", "run Herald: web, signups, delivery (the default)", cmdServe},
		{"migrate", "create or update the database schema", cmdMigrate},
		{"subscribers export", "write subscribers as CSV to stdout", cmdExport},
		{"subscribers import", "import subscribers from a CSV file", cmdImport},
		{"apikey create", "create an API key (printed once)", cmdAPIKeyCreate},
		{"admin create", "create an admin user (password on stdin)", cmdAdminCreate},
		{"consent verify", "check every subscriber's consent chain", cmdConsentVerify},
		{"bench signup", "measure signups through the HTTP stack", cmdBenchSignup},
		{"bench send", "measure a digest send against plain go-mail", cmdBenchSend},
		{"bench signup-load", "the load generator of bench signup (a process of its own)", cmdSignupLoad},
		{"bench smtp-sink", "an SMTP server that accepts everything (used by the benchmarks)", cmdSMTPSink},
	}
}

// run is the whole CLI; it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 {
		return cmdServe(e, nil)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		words := splitWords(c.name)
		if len(args) >= len(words) && equalWords(args[:len(words)], words) {
			return c.run(e, args[len(words):])
		}
	}
	fmt.Fprintf(stderr, "herald: unknown command %q\n\n", joinWords(args, 2))
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: herald [command] [flags]   (configuration comes from HERALD_* variables and .env)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-20s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'herald COMMAND --help' for a command's flags.")
}

func splitWords(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func equalWords(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func joinWords(args []string, n int) string {
	if len(args) < n {
		n = len(args)
	}
	out := ""
	for i, a := range args[:n] {
		if i > 0 {
			out += " "
		}
		out += a
	}
	return out
}
