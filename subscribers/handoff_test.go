package subscribers

import (
	"context"
	"strings"
	"testing"
	"time"

	"herald/delivery"
	"herald/mailer"
	"herald/models"
	"herald/models/testdb"
	"herald/templates"
)

// TestSignupHandsConfirmationToWorker: with a Handoff, a signup's
// confirmation is committed leased to the worker and handed over, so it is
// sent although the worker never claims (it polls once an hour and nobody
// wakes it); a signup whose transaction fails gives its places back.
func TestSignupHandsConfirmationToWorker(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, store *models.Store) {
		ctx := context.Background()
		if err := store.CreateSection(ctx, &models.Section{Slug: "politics-uk", Name: "Politics UK"}); err != nil {
			t.Fatal(err)
		}
		tpl, err := templates.New()
		if err != nil {
			t.Fatal(err)
		}
		tokens := NewTokens([]byte(strings.Repeat("k", 32)))
		mails, err := NewMails(MailConfig{Templates: tpl, Tokens: tokens, From: "news@example.com", ListID: "x <y.example.com>",
			Site: templates.Site{Name: "The Daily Example", BaseURL: "https://herald.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		w := delivery.New(delivery.Config{Store: store, Sender: mailer.NewDevMailbox(store), PollInterval: time.Hour,
			Renderers: map[string]delivery.Renderer{models.KindConfirmation: mails, models.KindNotice: mails}})
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { _ = w.Run(runCtx) }()
		deadline := time.Now().Add(10 * time.Second)
		for lease, _ := w.Reserve(0); lease == 0; lease, _ = w.Reserve(0) {
			if time.Now().After(deadline) {
				t.Fatal("the worker did not start")
			}
			time.Sleep(5 * time.Millisecond)
		}
		svc := New(store, Config{Tokens: tokens, ConsentText: "Yes", Handoff: w})
		go func() { _ = svc.Run(runCtx) }()
		signup := func(email string) error {
			return svc.Signup(ctx, SignupInput{Email: email, Sections: []string{"politics-uk"}, Frequency: "daily",
				Consent: true, Form: "api", IP: "192.0.2.1"})
		}
		if err := signup("reader@example.com"); err != nil {
			t.Fatal(err)
		}
		sub, err := store.SubscriberByEmail(ctx, "reader@example.com")
		if err != nil {
			t.Fatal(err)
		}
		for {
			ds, err := store.DeliveriesFor(ctx, sub.ID, 5)
			if err != nil || len(ds) != 1 {
				t.Fatalf("deliveries %+v, %v; want one", ds, err)
			}
			if ds[0].Status == models.DeliverySent {
				if ds[0].Kind != models.KindConfirmation || ds[0].Attempts != 1 {
					t.Fatalf("sent %+v, want the confirmation after one attempt", ds[0])
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the confirmation was not sent: %+v", ds[0])
			}
			time.Sleep(5 * time.Millisecond)
		}

		// Places taken by a transaction that fails come back.
		_, free := w.Reserve(1 << 20)
		w.Release(free)
		if models.IsPostgres(dsn) {
			testdb.Exec(t, dsn, `CREATE FUNCTION refuse_delivery() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql`)
			testdb.Exec(t, dsn, "CREATE TRIGGER refuse BEFORE INSERT ON deliveries FOR EACH ROW EXECUTE FUNCTION refuse_delivery()")
		} else {
			testdb.Exec(t, dsn, "CREATE TRIGGER refuse BEFORE INSERT ON deliveries BEGIN SELECT RAISE(ABORT, 'refused'); END")
		}
		if err := signup("second@example.com"); err == nil {
			t.Fatal("a signup whose deliveries cannot be written succeeded")
		}
		if _, after := w.Reserve(1 << 20); after != free {
			t.Fatalf("%d places free after a failed signup, want %d", after, free)
		}
	})
}
