package accounts_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"herald/accounts"
	"herald/models"
	"herald/models/testdb"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Two instances of Herald on one database count an account's wrong
// passwords together: three on one and two on the other lock it on both,
// and the lock ends on both.
func TestLoginLockSharedByInstances(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, store *models.Store) {
		ctx := context.Background()
		clk := &clock{t: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
		one := accounts.New(store, accounts.Config{BcryptCost: bcrypt.MinCost, Now: clk.Now})
		two := accounts.New(testdb.Open(t, dsn), accounts.Config{BcryptCost: bcrypt.MinCost, Now: clk.Now})
		if _, err := one.CreateUser(ctx, "desk@example.com", "the right password", models.RoleEditor); err != nil {
			t.Fatal(err)
		}
		for i, a := range []*accounts.Accounts{one, one, one, two, two} {
			if _, err := a.Authenticate(ctx, "desk@example.com", "wrong password"); !errors.Is(err, accounts.ErrBadCredentials) {
				t.Fatalf("wrong password %d: %v", i+1, err)
			}
		}
		for name, a := range map[string]*accounts.Accounts{"one": one, "two": two} {
			var le *accounts.LockedError
			if _, err := a.Authenticate(ctx, "desk@example.com", "the right password"); !errors.As(err, &le) || !le.Until.Equal(clk.Now().Add(accounts.LoginLock)) {
				t.Fatalf("instance %s after 5 failures: %v", name, err)
			}
		}
		clk.Add(accounts.LoginLock + time.Second)
		if _, err := two.Authenticate(ctx, "desk@example.com", "the right password"); err != nil {
			t.Fatalf("after the lock: %v", err)
		}
		// A good login starts the count again: four more failures do not lock.
		for i := 0; i < accounts.MaxLoginFailures-1; i++ {
			_, _ = one.Authenticate(ctx, "desk@example.com", "wrong password")
		}
		if _, err := one.Authenticate(ctx, "desk@example.com", "the right password"); err != nil {
			t.Fatalf("after four failures: %v", err)
		}
	})
}
