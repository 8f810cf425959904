package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"herald/accounts"
	"herald/models"
)

// openForCLI loads the configuration and opens (and migrates) the database.
func openForCLI(e *env) (*models.Store, *slog.Logger, int) {
	cfg, ok := loadConfig(e)
	if !ok {
		return nil, nil, 2
	}
	log := newLogger(cfg, e.stderr)
	store, err := openStore(e.ctx, cfg, log)
	if err != nil {
		return nil, nil, fail(e, "database: %v", err)
	}
	return store, log, 0
}

func cmdMigrate(e *env, args []string) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: herald migrate\n\nCreates or updates the database schema in HERALD_DB.")
	}
	if err := fs.Parse(args); err != nil {
		return exitFlag(err)
	}
	store, _, code := openForCLI(e)
	if store == nil {
		return code
	}
	defer store.Close()
	fmt.Fprintln(e.stdout, "database is up to date")
	return 0
}

func cmdAPIKeyCreate(e *env, args []string) int {
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	name := fs.String("name", "", "what the key is for, e.g. \"CMS\" (required)")
	scopes := fs.String("scopes", "*", "space- or comma-separated scopes, e.g. \"sections:read sections:write\"; * is all")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: herald apikey create --name NAME [--scopes SCOPES]\n\nCreates an API key and prints it alone on the last line. It is shown once:\nHerald keeps only its hash.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitFlag(err)
	}
	if strings.TrimSpace(*name) == "" {
		fmt.Fprintln(e.stderr, "herald apikey create: --name is required")
		return 2
	}
	store, _, code := openForCLI(e)
	if store == nil {
		return code
	}
	defer store.Close()
	key, k, err := accounts.New(store, accounts.Config{}).CreateAPIKey(e.ctx, *name, *scopes)
	if err != nil {
		return fail(e, "apikey create: %v", err)
	}
	fmt.Fprintf(e.stdout, "Created API key %q (id %d, scopes %s). Keep it now: it is not shown again.\n", k.Name, k.ID, k.Scopes)
	fmt.Fprintln(e.stdout, key)
	return 0
}

func cmdAdminCreate(e *env, args []string) int {
	fs := flag.NewFlagSet("admin create", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	email := fs.String("email", "", "the admin's email address (required)")
	role := fs.String("role", models.RoleAdmin, "admin or editor")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: herald admin create --email EMAIL [--role admin|editor] < password\n\nCreates an admin user; the password is read from the first line of stdin.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitFlag(err)
	}
	if *email == "" {
		fmt.Fprintln(e.stderr, "herald admin create: --email is required")
		return 2
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(e.stderr, "herald admin create: give the password on stdin, e.g. echo 'a long password' | herald admin create --email you@example.com")
		return 2
	}
	pw := strings.TrimRight(line, "\r\n")
	store, _, code := openForCLI(e)
	if store == nil {
		return code
	}
	defer store.Close()
	u, err := accounts.New(store, accounts.Config{}).CreateUser(e.ctx, *email, pw, *role)
	if err != nil {
		if errors.Is(err, accounts.ErrEmailTaken) {
			return fail(e, "admin create: %v", err)
		}
		return fail(e, "admin create: %v", err)
	}
	fmt.Fprintf(e.stdout, "Created %s %s (id %d).\n", u.Role, u.Email, u.ID)
	return 0
}

func cmdConsentVerify(e *env, args []string) int {
	fs := flag.NewFlagSet("consent verify", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: herald consent verify\n\nWalks every subscriber's consent ledger and reports the first broken link.\nExit status 0 when every chain verifies, 1 when one does not.")
	}
	if err := fs.Parse(args); err != nil {
		return exitFlag(err)
	}
	store, _, code := openForCLI(e)
	if store == nil {
		return code
	}
	defer store.Close()
	n, brk, err := store.VerifyConsentChains(e.ctx)
	if err != nil {
		return fail(e, "consent verify: %v", err)
	}
	if brk != nil {
		fmt.Fprintf(e.stdout, "BROKEN after checking %d events: %v\n", n, brk)
		return 1
	}
	fmt.Fprintf(e.stdout, "OK: %d consent events verified, every chain intact\n", n)
	return 0
}
