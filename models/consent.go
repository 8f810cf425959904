package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// PersonalDigest is the SHA-256 of an event's personal fields. The chain
// covers this digest instead of the fields, so erasure can blank them.
func PersonalDigest(ip, userAgent, sourceURL string) string {
	sum := sha256.Sum256([]byte("herald-consent-personal-v1\x00" + ip + "\x00" + userAgent + "\x00" + sourceURL))
	return hex.EncodeToString(sum[:])
}

// ChainHash computes an event's hash from the previous hash and its fields.
func ChainHash(e *ConsentEvent) string {
	var b strings.Builder
	for _, part := range []string{
		"herald-consent-v1", e.PrevHash, strconv.FormatInt(e.SubscriberID, 10), e.Kind,
		strconv.FormatInt(e.At.UTC().UnixMicro(), 10), e.Form, e.ConsentText, e.PolicyVersion,
		e.Sections, e.MessageID, e.PersonalDigest,
	} {
		b.WriteString(part)
		b.WriteByte(0)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// AppendConsentEvents adds events to their subscribers' ledgers: each gets
// the hash of the subscriber's previous event (including earlier ones in the
// same call) and its own hash. Call it inside Tx with the subscribers locked
// (LockSubscribers) so that two writers cannot fork a chain.
func (s *Store) AppendConsentEvents(ctx context.Context, events []*ConsentEvent) error {
	if len(events) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(events))
	seen := map[int64]bool{}
	for _, e := range events {
		if !seen[e.SubscriberID] {
			seen[e.SubscriberID] = true
			ids = append(ids, e.SubscriberID)
		}
	}
	last, err := s.lastConsentHashes(ctx, ids)
	if err != nil {
		return err
	}
	return s.chainAndInsert(ctx, events, last)
}

// AppendFirstConsentEvents starts the ledgers of subscribers created in
// this transaction: they have no earlier event, so there is nothing to look
// up. Use AppendConsentEvents for anyone else.
func (s *Store) AppendFirstConsentEvents(ctx context.Context, events []*ConsentEvent) error {
	if len(events) == 0 {
		return nil
	}
	return s.chainAndInsert(ctx, events, make(map[int64]string, len(events)))
}

func (s *Store) chainAndInsert(ctx context.Context, events []*ConsentEvent, last map[int64]string) error {
	for _, e := range events {
		e.At = e.At.UTC().Truncate(time.Microsecond)
		e.PersonalDigest = PersonalDigest(e.IP, e.UserAgent, e.SourceURL)
		e.PrevHash = last[e.SubscriberID]
		e.Hash = ChainHash(e)
		last[e.SubscriberID] = e.Hash
	}
	if tx := s.sqlTx(); tx != nil {
		return s.insertConsentSQLite(ctx, tx, events)
	}
	if err := s.w.WithContext(ctx).CreateInBatches(events, 500).Error; err != nil {
		return fmt.Errorf("append consent events: %w", err)
	}
	return nil
}

func (s *Store) lastConsentHashes(ctx context.Context, subscriberIDs []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(subscriberIDs))
	for start := 0; start < len(subscriberIDs); start += 500 {
		chunk := subscriberIDs[start:min(start+500, len(subscriberIDs))]
		var rows []struct {
			SubscriberID int64
			Hash         string
		}
		err := s.w.WithContext(ctx).Raw(`SELECT subscriber_id, hash FROM consent_events WHERE id IN (
			SELECT MAX(id) FROM consent_events WHERE subscriber_id IN ? GROUP BY subscriber_id)`, chunk).
			Scan(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("last consent hashes: %w", err)
		}
		for _, r := range rows {
			out[r.SubscriberID] = r.Hash
		}
	}
	return out, nil
}

// ConsentEvents returns a subscriber's ledger, oldest first.
func (s *Store) ConsentEvents(ctx context.Context, subscriberID int64) ([]ConsentEvent, error) {
	var out []ConsentEvent
	err := s.r.WithContext(ctx).Where("subscriber_id = ?", subscriberID).Order("id").Find(&out).Error
	return out, err
}

// ChainBreak describes the first event whose link does not verify.
type ChainBreak struct {
	EventID      int64
	SubscriberID int64
	Reason       string
}

func (b *ChainBreak) Error() string {
	return fmt.Sprintf("consent event %d (subscriber %d): %s", b.EventID, b.SubscriberID, b.Reason)
}

// VerifyConsentChains walks every subscriber's ledger in order, streaming,
// and returns the number of events checked and the first broken link (nil if
// every chain verifies).
func (s *Store) VerifyConsentChains(ctx context.Context) (int64, *ChainBreak, error) {
	return s.verifyChains(s.r.WithContext(ctx).Model(&ConsentEvent{}).Order("subscriber_id, id"))
}

// VerifySubscriberConsent verifies one subscriber's ledger.
func (s *Store) VerifySubscriberConsent(ctx context.Context, subscriberID int64) (int64, *ChainBreak, error) {
	return s.verifyChains(s.r.WithContext(ctx).Model(&ConsentEvent{}).Where("subscriber_id = ?", subscriberID).Order("id"))
}

// verifyChains checks each link: the previous hash, the event's own hash,
// and that present personal fields match the digest. Blank personal fields
// are accepted only where the subscriber's chain records an erasure.
func (s *Store) verifyChains(q *gorm.DB) (int64, *ChainBreak, error) {
	rows, err := q.Rows()
	if err != nil {
		return 0, nil, fmt.Errorf("verify consent: %w", err)
	}
	defer rows.Close()
	var (
		n        int64
		cur      int64 = -1
		prev     string
		blank    *ChainBreak
		erased   bool
		finished = func() *ChainBreak {
			if blank != nil && !erased {
				return blank
			}
			return nil
		}
	)
	for rows.Next() {
		var e ConsentEvent
		if err := q.ScanRows(rows, &e); err != nil {
			return n, nil, fmt.Errorf("verify consent: %w", err)
		}
		n++
		if e.SubscriberID != cur {
			if b := finished(); b != nil {
				return n, b, nil
			}
			cur, prev, blank, erased = e.SubscriberID, "", nil, false
		}
		fail := func(reason string) *ChainBreak {
			return &ChainBreak{EventID: e.ID, SubscriberID: e.SubscriberID, Reason: reason}
		}
		if e.PrevHash != prev {
			return n, fail("previous-hash link does not match the event before it (an event was removed, reordered or changed)"), nil
		}
		if ChainHash(&e) != e.Hash {
			return n, fail("hash does not match the event's contents (the event was changed)"), nil
		}
		if e.IP == "" && e.UserAgent == "" && e.SourceURL == "" {
			if PersonalDigest("", "", "") != e.PersonalDigest && blank == nil {
				blank = fail("personal fields are blank but the chain records no erasure")
			}
		} else if PersonalDigest(e.IP, e.UserAgent, e.SourceURL) != e.PersonalDigest {
			return n, fail("personal fields (IP, user agent or source URL) do not match their digest"), nil
		}
		if e.Kind == ConsentErase {
			erased = true
		}
		prev = e.Hash
	}
	if err := rows.Err(); err != nil {
		return n, nil, fmt.Errorf("verify consent: %w", err)
	}
	return n, finished(), nil
}
