package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"herald/models"
	"herald/models/testdb"
)

func TestClaimLeaseAndRecord(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, s *models.Store) {
		ctx := context.Background()
		now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
		var ds []*models.Delivery
		for i := 0; i < 5; i++ {
			ds = append(ds, &models.Delivery{Kind: models.KindTest, ToAddress: "a@example.com", Status: models.DeliveryPending, NextAttemptAt: now})
		}
		ds[4].NextAttemptAt = now.Add(time.Hour)
		if err := s.CreateDeliveries(ctx, ds); err != nil {
			t.Fatal(err)
		}
		got, err := s.ClaimDeliveries(ctx, now, time.Minute, 3)
		if err != nil || len(got) != 3 {
			t.Fatalf("claim: %d rows, %v", len(got), err)
		}
		for _, d := range got {
			if d.Status != models.DeliverySending || d.Attempts != 1 {
				t.Fatalf("claimed row %+v", d)
			}
		}
		rest, _ := s.ClaimDeliveries(ctx, now, time.Minute, 10)
		if len(rest) != 1 {
			t.Fatalf("second claim took %d rows, want the 1 due row left", len(rest))
		}
		// The lease of the first three runs out: they come back.
		n, err := s.ReclaimExpiredLeases(ctx, now.Add(2*time.Minute))
		if err != nil || n != 4 {
			t.Fatalf("reclaim = %d, %v; want 4", n, err)
		}
		again, _ := s.ClaimDeliveries(ctx, now.Add(2*time.Minute), time.Minute, 10)
		if len(again) != 4 {
			t.Fatalf("reclaimed claim = %d rows", len(again))
		}
		res := []models.DeliveryResult{
			{ID: again[0].ID, Status: models.DeliverySent},
			{ID: again[1].ID, Status: models.DeliveryFailed, Error: "550 no such user"},
			{ID: again[2].ID, Status: models.DeliveryPending, Error: "451 later", NextAttemptAt: now.Add(time.Hour)},
			{ID: again[3].ID, Status: models.DeliveryPending, GiveBackAttempt: true},
		}
		if err := s.RecordDeliveryResults(ctx, now, res); err != nil {
			t.Fatal(err)
		}
		counts, _ := s.DeliveryCounts(ctx)
		if counts[models.DeliverySent] != 1 || counts[models.DeliveryFailed] != 1 || counts[models.DeliveryPending] != 3 {
			t.Fatalf("counts = %v", counts)
		}
		d, _ := s.DeliveryByID(ctx, again[3].ID)
		if d.Attempts != 1 {
			t.Fatalf("given-back attempt count = %d, want 1", d.Attempts)
		}
	})
}

func TestConsentChainDetectsEdits(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, s *models.Store) {
		ctx := context.Background()
		sub := &models.Subscriber{Email: "a@example.com", EmailNorm: "a@example.com", Status: models.StatusPending}
		if err := s.CreateSubscribers(ctx, []*models.Subscriber{sub}); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
		evs := []*models.ConsentEvent{
			{SubscriberID: sub.ID, Kind: models.ConsentSignup, At: at, IP: "192.0.2.1", UserAgent: "UA", ConsentText: "Yes"},
			{SubscriberID: sub.ID, Kind: models.ConsentConfirm, At: at.Add(time.Minute), IP: "192.0.2.1"},
		}
		if err := s.AppendConsentEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendConsentEvents(ctx, []*models.ConsentEvent{{SubscriberID: sub.ID, Kind: models.ConsentUnsubscribe, At: at.Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		n, brk, err := s.VerifyConsentChains(ctx)
		if err != nil || brk != nil || n != 3 {
			t.Fatalf("verify intact = %d, %v, %v", n, brk, err)
		}
		// Rewrite the consent wording of the first event behind the Store's back.
		testdb.Exec(t, dsn, "UPDATE consent_events SET consent_text = ? WHERE id = ?", "No", evs[0].ID)
		_, brk, err = s.VerifyConsentChains(ctx)
		if err != nil || brk == nil || brk.EventID != evs[0].ID {
			t.Fatalf("verify after edit = %v, %v; want a break at event %d", brk, err, evs[0].ID)
		}
	})
}

// TestMigrateDropsRetiredIndexes: a database made by an earlier version,
// with deliveries' own subscriber_id index, loses it on migration (the
// unique (subscriber_id, digest_id) index serves those lookups).
func TestMigrateDropsRetiredIndexes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, s *models.Store) {
		const create = "CREATE INDEX idx_deliveries_subscriber_id ON deliveries (subscriber_id)"
		// Creating it succeeds only where it does not exist.
		testdb.Exec(t, dsn, create)
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		testdb.Exec(t, dsn, create)
	})
}

// TestSignupState: inside a transaction, the signup lookup returns known
// subscribers with their whole row and suppression reasons, whether an
// address has either, both or neither.
func TestSignupState(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, s *models.Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		confirmed := now.Add(-time.Hour)
		known := &models.Subscriber{Email: "Known@Example.com", EmailNorm: "known@example.com", Status: models.StatusActive,
			Source: "demo", CreatedAt: now, UpdatedAt: now, ConfirmedAt: &confirmed, ConfirmDayCount: 2}
		bounced := &models.Subscriber{Email: "b@example.com", EmailNorm: "b@example.com", Status: models.StatusBounced, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateSubscribers(ctx, []*models.Subscriber{known, bounced}); err != nil {
			t.Fatal(err)
		}
		for norm, reason := range map[string]string{"b@example.com": models.SuppressBounce, "gone@example.com": models.SuppressErased} {
			if err := s.Suppress(ctx, norm, reason, now); err != nil {
				t.Fatal(err)
			}
		}
		norms := []string{"known@example.com", "b@example.com", "gone@example.com", "new@example.com"}
		err := s.Tx(ctx, func(tx *models.Store) error {
			subs, suppressed, err := tx.SignupState(ctx, norms)
			if err != nil {
				return err
			}
			if len(subs) != 2 || subs["new@example.com"] != nil || subs["gone@example.com"] != nil {
				t.Errorf("subscribers = %v", subs)
			}
			if k := subs["known@example.com"]; k == nil || k.ID != known.ID || k.Email != known.Email || k.Status != models.StatusActive ||
				k.Source != "demo" || k.ConfirmedAt == nil || !k.ConfirmedAt.Equal(confirmed) || k.ConfirmDayCount != 2 {
				t.Errorf("known subscriber = %+v", k)
			}
			if b := subs["b@example.com"]; b == nil || b.ID != bounced.ID || b.Status != models.StatusBounced {
				t.Errorf("bounced subscriber = %+v", b)
			}
			want := map[string]string{"b@example.com": models.SuppressBounce, "gone@example.com": models.SuppressErased}
			if len(suppressed) != len(want) {
				t.Errorf("suppressed = %v, want %v", suppressed, want)
			}
			for k, v := range want {
				if suppressed[k] != v {
					t.Errorf("suppressed[%s] = %q, want %q", k, suppressed[k], v)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestBatchInsertIDs: rows inserted in one transaction get the ids the
// database gave them, in batches that mix multi-row and single-row
// statements, also after the highest ids were deleted (AUTOINCREMENT
// never reuses them).
func TestBatchInsertIDs(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string, s *models.Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		mk := func(prefix string, n int) []*models.Subscriber {
			var subs []*models.Subscriber
			for i := range n {
				norm := fmt.Sprintf("%s%d@example.com", prefix, i)
				subs = append(subs, &models.Subscriber{Email: norm, EmailNorm: norm, Status: models.StatusPending, CreatedAt: now, UpdatedAt: now})
			}
			return subs
		}
		gone := mk("gone", 5)
		if err := s.CreateSubscribers(ctx, gone); err != nil {
			t.Fatal(err)
		}
		testdb.Exec(t, dsn, "DELETE FROM subscribers WHERE id > ?", gone[1].ID)
		for _, n := range []int{1, 3, 4, 5, 16, 21, 37} {
			subs := mk(fmt.Sprintf("b%d.", n), n)
			var ds []*models.Delivery
			err := s.Tx(ctx, func(tx *models.Store) error {
				if err := tx.CreateSubscribers(ctx, subs); err != nil {
					return err
				}
				for i, sub := range subs {
					id := sub.ID
					ds = append(ds, &models.Delivery{Kind: models.KindConfirmation, SubscriberID: &id, Status: models.DeliveryPending,
						NextAttemptAt: now, MessageID: fmt.Sprintf("m%d.%d@example.com", n, i)})
				}
				return tx.CreateDeliveries(ctx, ds)
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, sub := range subs {
				got, err := s.SubscriberByEmail(ctx, sub.EmailNorm)
				if err != nil || got.ID != sub.ID || sub.ID <= gone[4].ID {
					t.Fatalf("batch of %d, row %d: id %d, stored as %+v (%v)", n, i, sub.ID, got, err)
				}
				d, err := s.DeliveryByID(ctx, ds[i].ID)
				if err != nil || d.MessageID != ds[i].MessageID || *d.SubscriberID != sub.ID {
					t.Fatalf("batch of %d, delivery %d: id %d holds %+v (%v)", n, i, ds[i].ID, d, err)
				}
			}
		}
	})
}
