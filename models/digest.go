package models

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// CreateDigest inserts a digest and its stories in order, in one
// transaction. A taken key is reported by IsUniqueViolation.
func (s *Store) CreateDigest(ctx context.Context, d *Digest, storyIDs []int64) error {
	return s.Tx(ctx, func(tx *Store) error {
		if err := tx.w.WithContext(ctx).Create(d).Error; err != nil {
			return fmt.Errorf("create digest: %w", err)
		}
		rows := make([]DigestStory, len(storyIDs))
		for i, id := range storyIDs {
			rows[i] = DigestStory{DigestID: d.ID, StoryID: id, Position: i}
		}
		if len(rows) == 0 {
			return nil
		}
		if err := tx.w.WithContext(ctx).CreateInBatches(rows, 500).Error; err != nil {
			return fmt.Errorf("create digest stories: %w", err)
		}
		return nil
	})
}

// DigestByID returns one digest.
func (s *Store) DigestByID(ctx context.Context, id int64) (*Digest, error) {
	var d Digest
	if err := s.r.WithContext(ctx).First(&d, id).Error; err != nil {
		return nil, notFound(err)
	}
	return &d, nil
}

// DigestByKey returns the digest with this unique key.
func (s *Store) DigestByKey(ctx context.Context, key string) (*Digest, error) {
	var d Digest
	if err := s.r.WithContext(ctx).Where("key = ?", key).First(&d).Error; err != nil {
		return nil, notFound(err)
	}
	return &d, nil
}

// DigestStoryIDs returns a digest's story ids in order.
func (s *Store) DigestStoryIDs(ctx context.Context, digestID int64) ([]int64, error) {
	var ids []int64
	err := s.r.WithContext(ctx).Model(&DigestStory{}).Where("digest_id = ?", digestID).
		Order("position").Pluck("story_id", &ids).Error
	return ids, err
}

// NewStoriesFor returns the visible stories that no earlier digest of this
// kind included and that were published or received at or after since,
// newest first. Going by "no earlier digest included it" rather than by
// publication time alone means a story a feed delivers late is not lost.
func (s *Store) NewStoriesFor(ctx context.Context, kind string, since time.Time, limit int) ([]Story, error) {
	var out []Story
	err := s.r.WithContext(ctx).
		Where("hidden = ? AND (published_at >= ? OR created_at >= ?)", false, since.UTC(), since.UTC()).
		Where(`NOT EXISTS (SELECT 1 FROM digest_stories ds JOIN digests d ON d.id = ds.digest_id
			WHERE ds.story_id = stories.id AND d.kind = ? AND d.status <> ?)`, kind, DigestCancelled).
		Order("published_at DESC, id DESC").Limit(limit).Find(&out).Error
	return out, err
}

// SetDigestStatus moves a digest from one of the from statuses to status,
// and reports whether it did.
func (s *Store) SetDigestStatus(ctx context.Context, id int64, from []string, status string, updates map[string]any) (bool, error) {
	if updates == nil {
		updates = map[string]any{}
	}
	updates["status"] = status
	res := s.w.WithContext(ctx).Model(&Digest{}).Where("id = ? AND status IN ?", id, from).Updates(updates)
	if res.Error != nil {
		return false, fmt.Errorf("set digest status: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// Audience selects a digest's readers: active subscribers with a
// subscription at one of Frequencies to one of SectionIDs (all sections
// when empty).
type Audience struct {
	Frequencies []string
	SectionIDs  []int64
	// AlertCap, when above zero, leaves out readers who already received
	// that many alerts since AlertSince.
	AlertCap   int
	AlertSince time.Time
}

// AlertCapped is the last_error of an alert delivery held back by the
// per-reader daily cap; its story goes in the reader's next alert.
const AlertCapped = "alert-cap"

// EnqueueDigest inserts the digest's deliveries in set-based statements and
// moves it to sending, in one transaction: a pending delivery for every
// audience member subscribed to a section one of its stories is in, and a
// skipped one for every audience member with nothing in it (and, for
// alerts, for every reader over the daily cap, marked AlertCapped). Rows
// that exist already (a second start) are left alone: a digest is never
// sent twice to one subscriber. It returns the number of recipients.
func (s *Store) EnqueueDigest(ctx context.Context, digestID int64, aud Audience, now time.Time, from []string) (int64, error) {
	now = now.UTC()
	var recipients int64
	err := s.Tx(ctx, func(tx *Store) error {
		res := tx.w.WithContext(ctx).Model(&Digest{}).Where("id = ? AND status IN ?", digestID, from).
			Updates(map[string]any{"status": DigestSending, "started_at": now, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("start digest: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return errNotStartable
		}
		secFilter, secArgs := "", []any{}
		if len(aud.SectionIDs) > 0 {
			secFilter = " AND sub.section_id IN ?"
			secArgs = []any{aud.SectionIDs}
		}
		// Each part is SQL with its arguments, joined in order.
		type part struct {
			sql  string
			args []any
		}
		insert := func(status, lastError string) part {
			return part{`INSERT INTO deliveries (kind, subscriber_id, digest_id, to_address, status, next_attempt_at, attempts, last_error, message_id, data, created_at)
				SELECT ?, s.id, ?, '', ?, ?, 0, ?, '', '', ? `, []any{KindDigest, digestID, status, now, lastError, now}}
		}
		audience := part{`FROM subscribers s WHERE s.status = ? AND EXISTS (
			SELECT 1 FROM subscriptions sub WHERE sub.subscriber_id = s.id AND sub.frequency IN ?` + secFilter + `)`,
			append([]any{StatusActive, aud.Frequencies}, secArgs...)}
		withStories := func(not string) part {
			// A story hidden by an editor counts for nobody.
			return part{` AND ` + not + `EXISTS (SELECT 1 FROM subscriptions sub
				JOIN story_sections ss ON ss.section_id = sub.section_id
				JOIN digest_stories ds ON ds.story_id = ss.story_id
				JOIN stories st ON st.id = ds.story_id AND st.hidden = ?
				WHERE sub.subscriber_id = s.id AND ds.digest_id = ? AND sub.frequency IN ?` + secFilter + `)`,
				append([]any{false, digestID, aud.Frequencies}, secArgs...)}
		}
		capped := func(cmp string) part {
			if aud.AlertCap <= 0 {
				if cmp == ">=" {
					return part{" AND 1 = 0", nil}
				}
				return part{}
			}
			return part{` AND (SELECT COUNT(*) FROM deliveries dd JOIN digests dg ON dg.id = dd.digest_id
				WHERE dd.subscriber_id = s.id AND dg.kind = ? AND dd.status <> ? AND dd.created_at >= ?) ` + cmp + ` ?`,
				[]any{DigestAlert, DeliverySkipped, aud.AlertSince.UTC(), aud.AlertCap}}
		}
		exec := func(parts ...part) (int64, error) {
			var q strings.Builder
			var args []any
			for _, p := range parts {
				q.WriteString(p.sql)
				args = append(args, p.args...)
			}
			q.WriteString(" ON CONFLICT DO NOTHING")
			res := tx.w.WithContext(ctx).Exec(q.String(), args...)
			return res.RowsAffected, res.Error
		}
		var err error
		if recipients, err = exec(insert(DeliveryPending, ""), audience, withStories(""), capped("<")); err != nil {
			return fmt.Errorf("enqueue digest: %w", err)
		}
		if _, err := exec(insert(DeliverySkipped, AlertCapped), audience, withStories(""), capped(">=")); err != nil {
			return fmt.Errorf("enqueue digest (capped): %w", err)
		}
		if _, err := exec(insert(DeliverySkipped, ""), audience, withStories("NOT ")); err != nil {
			return fmt.Errorf("enqueue digest (skipped): %w", err)
		}
		return tx.w.WithContext(ctx).Model(&Digest{}).Where("id = ?", digestID).
			UpdateColumn("recipients", recipients).Error
	})
	return recipients, err
}

// CarriedAlertStories returns the stories of alerts the cap held back from
// a subscriber after the last alert sent to them before the delivery
// beforeDelivery, oldest first: they ride along with that delivery.
func (s *Store) CarriedAlertStories(ctx context.Context, subscriberID, beforeDelivery int64) ([]int64, error) {
	var ids []int64
	err := s.r.WithContext(ctx).Raw(`SELECT ds.story_id FROM deliveries d
		JOIN digests g ON g.id = d.digest_id AND g.kind = ?
		JOIN digest_stories ds ON ds.digest_id = g.id
		WHERE d.subscriber_id = ? AND d.status = ? AND d.last_error = ? AND d.id < ?
		AND d.id > COALESCE((SELECT MAX(x.id) FROM deliveries x JOIN digests xg ON xg.id = x.digest_id AND xg.kind = ?
			WHERE x.subscriber_id = ? AND x.status IN ? AND x.id < ?), 0)
		ORDER BY d.id, ds.position`,
		DigestAlert, subscriberID, DeliverySkipped, AlertCapped, beforeDelivery,
		DigestAlert, subscriberID, []string{DeliverySent, DeliveryPending, DeliverySending}, beforeDelivery).Scan(&ids).Error
	return ids, err
}

// errNotStartable: the digest is not in a status that can start.
var errNotStartable = fmt.Errorf("digest cannot start from its current status")

// IsNotStartable reports whether err says the digest was not startable.
func IsNotStartable(err error) bool { return err == errNotStartable }

// DigestCounts is a digest's deliveries by outcome.
type DigestCounts struct {
	Sent, Failed, Skipped, Pending int64
}

// CountDigest counts a digest's deliveries by status (pending includes
// rows being sent).
func (s *Store) CountDigest(ctx context.Context, digestID int64) (DigestCounts, error) {
	counts, err := s.CountDigests(ctx, []int64{digestID})
	return counts[digestID], err
}

// SkipPending marks a digest's pending deliveries skipped (cancel).
func (s *Store) SkipPending(ctx context.Context, digestID int64, reason string) (int64, error) {
	res := s.w.WithContext(ctx).Model(&Delivery{}).Where("digest_id = ? AND status = ?", digestID, DeliveryPending).
		Updates(map[string]any{"status": DeliverySkipped, "last_error": reason})
	return res.RowsAffected, res.Error
}

// FinishDigests marks sent every sending digest with no delivery left
// pending or in flight, and returns how many it finished. It then keeps
// the final counts of every ended digest that has nothing in flight.
func (s *Store) FinishDigests(ctx context.Context, now time.Time) (int64, error) {
	inFlight := []string{DeliveryPending, DeliverySending}
	res := s.w.WithContext(ctx).Exec(`UPDATE digests SET status = ?, finished_at = ?, updated_at = ?
		WHERE status = ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = digests.id AND d.status IN ?)`,
		DigestSent, now.UTC(), now.UTC(), DigestSending, inFlight)
	if res.Error != nil {
		return 0, res.Error
	}
	count := func(status string) string {
		return `(SELECT COUNT(*) FROM deliveries d WHERE d.digest_id = digests.id AND d.status = '` + status + `')`
	}
	err := s.w.WithContext(ctx).Exec(`UPDATE digests SET counts_final = ?,
		final_sent = `+count(DeliverySent)+`, final_failed = `+count(DeliveryFailed)+`, final_skipped = `+count(DeliverySkipped)+`
		WHERE status IN ? AND counts_final = ?
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = digests.id AND d.status IN ?)`,
		true, []string{DigestSent, DigestCancelled}, false, inFlight).Error
	return res.RowsAffected, err
}

// DigestsByStatus lists digests in a status.
func (s *Store) DigestsByStatus(ctx context.Context, status string) ([]Digest, error) {
	var out []Digest
	err := s.r.WithContext(ctx).Where("status = ?", status).Order("id").Find(&out).Error
	return out, err
}

// DueScheduledDigests returns scheduled digests whose time has come.
func (s *Store) DueScheduledDigests(ctx context.Context, now time.Time) ([]Digest, error) {
	var out []Digest
	err := s.r.WithContext(ctx).Where("status = ? AND scheduled_at <= ?", DigestScheduled, now.UTC()).Order("id").Find(&out).Error
	return out, err
}

// SubscriptionSections returns, for each subscriber, the section ids they
// follow at one of the frequencies.
func (s *Store) SubscriptionSections(ctx context.Context, subscriberIDs []int64, freqs []string) (map[int64][]int64, error) {
	out := make(map[int64][]int64, len(subscriberIDs))
	for start := 0; start < len(subscriberIDs); start += 500 {
		var rows []struct{ SubscriberID, SectionID int64 }
		err := s.r.WithContext(ctx).Model(&Subscription{}).Select("subscriber_id, section_id").
			Where("subscriber_id IN ? AND frequency IN ?", subscriberIDs[start:min(start+500, len(subscriberIDs))], freqs).
			Scan(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("subscription sections: %w", err)
		}
		for _, r := range rows {
			out[r.SubscriberID] = append(out[r.SubscriberID], r.SectionID)
		}
	}
	return out, nil
}

// DigestFailureCounts returns, for each sending digest, its failed and
// finished (sent + failed) deliveries, for the error cap.
func (s *Store) DigestFailureCounts(ctx context.Context) (map[int64][2]int64, error) {
	var rows []struct {
		DigestID int64
		Failed   int64
		Done     int64
	}
	err := s.r.WithContext(ctx).Raw(`SELECT d.digest_id,
			SUM(CASE WHEN d.status = ? THEN 1 ELSE 0 END) AS failed,
			SUM(CASE WHEN d.status IN (?, ?) THEN 1 ELSE 0 END) AS done
		FROM deliveries d JOIN digests g ON g.id = d.digest_id
		WHERE g.status = ? GROUP BY d.digest_id`,
		DeliveryFailed, DeliveryFailed, DeliverySent, DigestSending).Scan(&rows).Error
	out := map[int64][2]int64{}
	for _, r := range rows {
		out[r.DigestID] = [2]int64{r.Failed, r.Done}
	}
	return out, err
}
