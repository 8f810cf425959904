// Package accounts holds the people and programs allowed into Herald's
// admin side: admin users and their passwords, sessions, and API keys.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"herald/models"
)

// Default session lifetimes: a session ends after IdleTimeout without a
// request, and in any case MaxAge after login.
const (
	IdleTimeout = 12 * time.Hour
	MaxAge      = 7 * 24 * time.Hour
)

// Errors.
var (
	ErrBadCredentials = errors.New("the email or password is not right")
	ErrNoSession      = errors.New("not logged in")
	ErrBadKey         = errors.New("the API key is not valid")
	ErrEmailTaken     = errors.New("an admin user with this email already exists")
)

// Config configures Accounts.
type Config struct {
	// BcryptCost is the password hashing cost (default bcrypt.DefaultCost+2).
	BcryptCost int
	Now        func() time.Time
	// SessionIdle and SessionMax are the session lifetimes (defaults
	// IdleTimeout and MaxAge).
	SessionIdle time.Duration
	SessionMax  time.Duration
}

// Accounts manages admin users, sessions and API keys.
type Accounts struct {
	store *models.Store
	cost  int
	now   func() time.Time
	idle  time.Duration
	max   time.Duration
	// dummy is compared against when the email is unknown, so a login
	// takes as long whether or not the account exists.
	dummy []byte
}

// New returns Accounts on store.
func New(store *models.Store, cfg Config) *Accounts {
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost + 2
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = IdleTimeout
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = MaxAge
	}
	dummy, _ := bcrypt.GenerateFromPassword([]byte("not a password"), cfg.BcryptCost)
	return &Accounts{store: store, cost: cfg.BcryptCost, now: cfg.Now, dummy: dummy, idle: cfg.SessionIdle, max: cfg.SessionMax}
}

// ValidatePassword returns a message for the person if pw is too weak.
func ValidatePassword(pw string) string {
	switch {
	case len(pw) < 10:
		return "Use at least 10 characters."
	case len(pw) > 72:
		return "Use at most 72 characters."
	}
	return ""
}

// ValidateEmail returns a message for the person if email cannot be an
// admin user's address.
func ValidateEmail(email string) string {
	email = strings.TrimSpace(email)
	at := strings.LastIndexByte(email, '@')
	if email == "" || at < 1 || at == len(email)-1 || len(email) > 254 || strings.ContainsAny(email, "\r\n\t <>,;\"") {
		return "Enter a valid email address, like name@example.com."
	}
	return ""
}

// CreateUser adds an admin user with a bcrypt-hashed password.
func (a *Accounts) CreateUser(ctx context.Context, email, password, role string) (*models.AdminUser, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if msg := ValidateEmail(email); msg != "" {
		return nil, errors.New(msg)
	}
	if msg := ValidatePassword(password); msg != "" {
		return nil, errors.New(msg)
	}
	if role != models.RoleAdmin && role != models.RoleEditor {
		return nil, fmt.Errorf("role must be %s or %s", models.RoleAdmin, models.RoleEditor)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), a.cost)
	if err != nil {
		return nil, err
	}
	now := a.now().UTC()
	u := &models.AdminUser{Email: email, PasswordHash: string(hash), Role: role, CreatedAt: now, UpdatedAt: now}
	if err := a.store.CreateAdminUser(ctx, u); err != nil {
		if models.IsUniqueViolation(err) {
			return nil, ErrEmailTaken
		}
		return nil, err
	}
	return u, nil
}

// EnsureUser creates the user unless one with this email exists.
func (a *Accounts) EnsureUser(ctx context.Context, email, password, role string) (created bool, err error) {
	if _, err := a.store.AdminUserByEmail(ctx, strings.ToLower(strings.TrimSpace(email))); err == nil {
		return false, nil
	}
	if _, err := a.CreateUser(ctx, email, password, role); err != nil && !errors.Is(err, ErrEmailTaken) {
		return false, err
	}
	return true, nil
}

// HasUsers reports whether any admin user exists.
func (a *Accounts) HasUsers(ctx context.Context) (bool, error) {
	n, err := a.store.CountAdminUsers(ctx)
	return n > 0, err
}

// Authenticate checks an email and password.
func (a *Accounts) Authenticate(ctx context.Context, email, password string) (*models.AdminUser, error) {
	u, err := a.store.AdminUserByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	if err != nil {
		_ = bcrypt.CompareHashAndPassword(a.dummy, []byte(password))
		if errors.Is(err, models.ErrNotFound) {
			return nil, ErrBadCredentials
		}
		return nil, err
	}
	now := a.now().UTC()
	if u.LockedUntil != nil && now.Before(*u.LockedUntil) {
		// As long as a real check, so a lock says nothing by its timing.
		_ = bcrypt.CompareHashAndPassword(a.dummy, []byte(password))
		return nil, &LockedError{Until: *u.LockedUntil}
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		if err := a.store.RecordLoginFailure(ctx, u.ID, MaxLoginFailures, now.Add(LoginLock)); err != nil {
			return nil, err
		}
		return nil, ErrBadCredentials
	}
	if u.FailedLogins > 0 {
		if err := a.store.ClearLoginFailures(ctx, u.ID); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// MaxLoginFailures wrong passwords in a row lock an account for LoginLock.
// The count and the lock are in the database, so they hold across
// instances and restarts.
const (
	MaxLoginFailures = 5
	LoginLock        = 15 * time.Minute
)

// LockedError refuses a login to an account locked after too many wrong
// passwords.
type LockedError struct{ Until time.Time }

func (e *LockedError) Error() string {
	return "too many failed logins; locked until " + e.Until.Format(time.RFC3339)
}

// NewSession starts a session for a user and returns the cookie value.
func (a *Accounts) NewSession(ctx context.Context, userID int64) (string, *models.Session, error) {
	value := randomString(32)
	now := a.now().UTC()
	sess := &models.Session{
		ID: hashHex(value), UserID: userID, CSRFToken: randomString(24),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(a.idle),
	}
	if err := a.store.CreateSession(ctx, sess); err != nil {
		return "", nil, err
	}
	return value, sess, nil
}

// Session returns the live session for a cookie value and its user, and
// extends the idle expiry (never past MaxAge after login).
func (a *Accounts) Session(ctx context.Context, cookie string) (*models.Session, *models.AdminUser, error) {
	if cookie == "" || len(cookie) > 128 {
		return nil, nil, ErrNoSession
	}
	now := a.now().UTC()
	sess, u, err := a.store.SessionWithUser(ctx, hashHex(cookie), now)
	if err != nil {
		if errors.Is(err, models.ErrNotFound) {
			return nil, nil, ErrNoSession
		}
		return nil, nil, err
	}
	if now.Sub(sess.CreatedAt) > a.max {
		_ = a.store.DeleteSession(ctx, sess.ID)
		return nil, nil, ErrNoSession
	}
	// Touch at most once a minute: a page load should not always write.
	if now.Sub(sess.LastSeenAt) > time.Minute {
		exp := now.Add(a.idle)
		if limit := sess.CreatedAt.Add(a.max); exp.After(limit) {
			exp = limit
		}
		_ = a.store.TouchSession(ctx, sess.ID, now, exp)
	}
	return sess, u, nil
}

// SessionMax is how long a session can last at most.
func (a *Accounts) SessionMax() time.Duration { return a.max }

// EndSession logs a session out.
func (a *Accounts) EndSession(ctx context.Context, cookie string) error {
	return a.store.DeleteSession(ctx, hashHex(cookie))
}

// KeyPrefix starts every API key, so a leaked one is easy to recognise.
const KeyPrefix = "hld_"

// CreateAPIKey makes a new API key and returns it; only its hash is kept.
func (a *Accounts) CreateAPIKey(ctx context.Context, name, scopes string) (string, *models.APIKey, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", nil, errors.New("the key needs a name")
	}
	if scopes == "" {
		scopes = "*"
	}
	key := KeyPrefix + randomString(32)
	k := &models.APIKey{Name: name, Prefix: key[:len(KeyPrefix)+6], Hash: hashHex(key), Scopes: scopes, CreatedAt: a.now().UTC()}
	if err := a.store.CreateAPIKey(ctx, k); err != nil {
		return "", nil, err
	}
	return key, k, nil
}

// AuthenticateKey returns the API key record for a presented key.
func (a *Accounts) AuthenticateKey(ctx context.Context, key string) (*models.APIKey, error) {
	if !strings.HasPrefix(key, KeyPrefix) || len(key) > 128 {
		return nil, ErrBadKey
	}
	k, err := a.store.APIKeyByHash(ctx, hashHex(key))
	if err != nil {
		if errors.Is(err, models.ErrNotFound) {
			return nil, ErrBadKey
		}
		return nil, err
	}
	if k.LastUsedAt == nil || a.now().Sub(*k.LastUsedAt) > time.Minute {
		_ = a.store.TouchAPIKey(ctx, k.ID, a.now())
	}
	return k, nil
}

// HasScope reports whether a key may do what scope names ("*" is all).
func HasScope(k *models.APIKey, scope string) bool {
	for _, s := range strings.Fields(strings.ReplaceAll(k.Scopes, ",", " ")) {
		if s == "*" || s == scope {
			return true
		}
	}
	return false
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// RandomToken returns a random URL-safe token of n bytes of entropy.
func RandomToken(n int) string { return randomString(n) }

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// ErrLastAdmin refuses a change that would leave Herald without an admin.
var ErrLastAdmin = errors.New("Herald needs at least one admin: make someone else an admin first")

// ChangePassword replaces a user's password after checking the current one,
// and ends every other session of the user, so a stolen session dies with
// the old password. keepSession is the session making the change.
func (a *Accounts) ChangePassword(ctx context.Context, userID int64, keepSession, current, next, confirm string) (fieldErrs map[string]string, err error) {
	u, err := a.store.AdminUserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	errs := map[string]string{}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(current)) != nil {
		errs["current_password"] = "This is not your current password."
	}
	if msg := ValidatePassword(next); msg != "" {
		errs["new_password"] = msg
	} else if next == current {
		errs["new_password"] = "Choose a password different from the current one."
	} else if next != confirm {
		errs["new_password_confirm"] = "The two new passwords are not the same."
	}
	if len(errs) > 0 {
		return errs, nil
	}
	if err := a.storePassword(ctx, userID, next); err != nil {
		return nil, err
	}
	return nil, a.store.DeleteOtherSessions(ctx, userID, keepSession)
}

// SetPassword replaces a user's password (an admin resetting it, or the
// CLI) and ends all of the user's sessions.
func (a *Accounts) SetPassword(ctx context.Context, userID int64, password string) error {
	if msg := ValidatePassword(password); msg != "" {
		return errors.New(msg)
	}
	if err := a.storePassword(ctx, userID, password); err != nil {
		return err
	}
	return a.store.DeleteUserSessions(ctx, userID)
}

func (a *Accounts) storePassword(ctx context.Context, userID int64, password string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), a.cost)
	if err != nil {
		return err
	}
	return a.store.SetAdminPassword(ctx, userID, string(hash), a.now().UTC())
}

// SetRole changes a user's role; the last admin cannot be demoted.
func (a *Accounts) SetRole(ctx context.Context, userID int64, role string) error {
	if role != models.RoleAdmin && role != models.RoleEditor {
		return fmt.Errorf("role must be %s or %s", models.RoleAdmin, models.RoleEditor)
	}
	u, err := a.store.AdminUserByID(ctx, userID)
	if err != nil {
		return err
	}
	if u.Role == models.RoleAdmin && role != models.RoleAdmin {
		if n, err := a.store.CountAdmins(ctx); err != nil {
			return err
		} else if n <= 1 {
			return ErrLastAdmin
		}
	}
	return a.store.SetAdminRole(ctx, userID, role, a.now())
}

// DeleteUser removes a user and ends their sessions; the last admin stays.
func (a *Accounts) DeleteUser(ctx context.Context, userID int64) error {
	u, err := a.store.AdminUserByID(ctx, userID)
	if err != nil {
		return err
	}
	if u.Role == models.RoleAdmin {
		if n, err := a.store.CountAdmins(ctx); err != nil {
			return err
		} else if n <= 1 {
			return ErrLastAdmin
		}
	}
	return a.store.DeleteAdminUser(ctx, userID)
}
