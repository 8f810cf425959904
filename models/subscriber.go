package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// SubscriberByID returns one subscriber.
func (s *Store) SubscriberByID(ctx context.Context, id int64) (*Subscriber, error) {
	var sub Subscriber
	if err := s.r.WithContext(ctx).First(&sub, id).Error; err != nil {
		return nil, notFound(err)
	}
	return &sub, nil
}

// SubscriberByEmail returns the subscriber with this normalised address.
func (s *Store) SubscriberByEmail(ctx context.Context, norm string) (*Subscriber, error) {
	var sub Subscriber
	if err := s.r.WithContext(ctx).Where("email_norm = ?", norm).First(&sub).Error; err != nil {
		return nil, notFound(err)
	}
	return &sub, nil
}

// LockSubscribers returns the subscribers with these normalised addresses,
// keyed by them, locking their rows on Postgres (SQLite's single writer
// already serialises). Use inside Tx.
func (s *Store) LockSubscribers(ctx context.Context, norms []string) (map[string]*Subscriber, error) {
	out := make(map[string]*Subscriber, len(norms))
	if tx := s.sqlTx(); tx != nil && s.hot != nil && len(norms) <= 64 {
		return out, s.lockSubscribersSQLite(ctx, tx, norms, out)
	}
	for start := 0; start < len(norms); start += 500 {
		chunk := norms[start:min(start+500, len(norms))]
		q := s.w.WithContext(ctx).Where("email_norm IN ?", chunk)
		if s.postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var subs []*Subscriber
		if err := q.Find(&subs).Error; err != nil {
			return nil, fmt.Errorf("lock subscribers: %w", err)
		}
		for _, sub := range subs {
			out[sub.EmailNorm] = sub
		}
	}
	return out, nil
}

// SignupState returns, for these normalised addresses, their subscribers
// (locked as LockSubscribers does) and their suppression reasons, both
// keyed by normalised address. Use inside Tx.
func (s *Store) SignupState(ctx context.Context, norms []string) (map[string]*Subscriber, map[string]string, error) {
	if tx := s.sqlTx(); tx != nil && s.hot != nil && len(norms) <= 512 {
		subs := make(map[string]*Subscriber, len(norms))
		suppressed := map[string]string{}
		return subs, suppressed, s.probeSQLite(ctx, tx, norms, subs, suppressed)
	}
	subs, err := s.LockSubscribers(ctx, norms)
	if err != nil {
		return nil, nil, err
	}
	suppressed, err := s.Suppressions(ctx, norms)
	if err != nil {
		return nil, nil, err
	}
	return subs, suppressed, nil
}

// LockSubscriber returns one subscriber by id, locked on Postgres. Use inside Tx.
func (s *Store) LockSubscriber(ctx context.Context, id int64) (*Subscriber, error) {
	q := s.w.WithContext(ctx)
	if s.postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var sub Subscriber
	if err := q.First(&sub, id).Error; err != nil {
		return nil, notFound(err)
	}
	return &sub, nil
}

// CreateSubscribers inserts new subscribers in one statement per 500 rows
// and fills in their ids.
func (s *Store) CreateSubscribers(ctx context.Context, subs []*Subscriber) error {
	if len(subs) == 0 {
		return nil
	}
	if tx := s.sqlTx(); tx != nil {
		return s.insertSubscribersSQLite(ctx, tx, subs)
	}
	if err := s.w.WithContext(ctx).CreateInBatches(subs, 500).Error; err != nil {
		return fmt.Errorf("create subscribers: %w", err)
	}
	return nil
}

// SaveSubscriber writes every field of an existing subscriber.
func (s *Store) SaveSubscriber(ctx context.Context, sub *Subscriber) error {
	if err := s.w.WithContext(ctx).Save(sub).Error; err != nil {
		return fmt.Errorf("save subscriber: %w", err)
	}
	return nil
}

// Subscriptions returns a subscriber's subscriptions with their sections.
func (s *Store) Subscriptions(ctx context.Context, subscriberID int64) ([]SubscriptionView, error) {
	var out []SubscriptionView
	err := s.r.WithContext(ctx).Table("subscriptions").
		Select("subscriptions.section_id, sections.slug, sections.name, subscriptions.frequency").
		Joins("JOIN sections ON sections.id = subscriptions.section_id").
		Where("subscriptions.subscriber_id = ?", subscriberID).
		Order("sections.name").Scan(&out).Error
	return out, err
}

// SubscriptionView is a subscription with its section's slug and name.
type SubscriptionView struct {
	SectionID int64
	Slug      string
	Name      string
	Frequency string
}

// ReplaceSubscriptions sets exactly these subscriptions for each subscriber
// named in subs (keyed by subscriber id). Use inside Tx.
func (s *Store) ReplaceSubscriptions(ctx context.Context, subs map[int64][]Subscription) error {
	if len(subs) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(subs))
	var rows []*Subscription
	for id, list := range subs {
		ids = append(ids, id)
		for i := range list {
			list[i].SubscriberID = id
			rows = append(rows, &list[i])
		}
	}
	db := s.w.WithContext(ctx)
	for start := 0; start < len(ids); start += 500 {
		if err := db.Where("subscriber_id IN ?", ids[start:min(start+500, len(ids))]).Delete(&Subscription{}).Error; err != nil {
			return fmt.Errorf("replace subscriptions: %w", err)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if tx := s.sqlTx(); tx != nil {
		return s.insertSubscriptionsSQLite(ctx, tx, rows)
	}
	if err := db.CreateInBatches(rows, 500).Error; err != nil {
		return fmt.Errorf("replace subscriptions: %w", err)
	}
	return nil
}

// CreateSubscriptions inserts subscriptions of subscribers that have none
// yet (created in this transaction), keyed by subscriber id.
func (s *Store) CreateSubscriptions(ctx context.Context, subs map[int64][]Subscription) error {
	var rows []*Subscription
	for id, list := range subs {
		for i := range list {
			list[i].SubscriberID = id
			rows = append(rows, &list[i])
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if tx := s.sqlTx(); tx != nil {
		return s.insertSubscriptionsSQLite(ctx, tx, rows)
	}
	if err := s.w.WithContext(ctx).CreateInBatches(rows, 500).Error; err != nil {
		return fmt.Errorf("create subscriptions: %w", err)
	}
	return nil
}

// SetSubscriberStatus changes a subscriber's status and the matching time.
func (s *Store) SetSubscriberStatus(ctx context.Context, id int64, status string, at time.Time) error {
	updates := map[string]any{"status": status, "updated_at": at}
	switch status {
	case StatusActive:
		updates["confirmed_at"] = at
		updates["unsubscribed_at"] = nil
	case StatusUnsubscribed:
		updates["unsubscribed_at"] = at
	}
	res := s.w.WithContext(ctx).Model(&Subscriber{}).Where("id = ?", id).Updates(updates)
	if res.Error != nil {
		return fmt.Errorf("set subscriber status: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// EraseSubscriber removes a subscriber's personal data: the address, the
// subscriptions, the personal fields of their consent events and of their
// deliveries. The consent chain still verifies; the caller adds the erase
// event and the suppression hash in the same transaction.
func (s *Store) EraseSubscriber(ctx context.Context, id int64, at time.Time) error {
	db := s.w.WithContext(ctx)
	placeholder := fmt.Sprintf("erased-%d@invalid", id)
	steps := []func() error{
		func() error {
			return db.Model(&Subscriber{}).Where("id = ?", id).Updates(map[string]any{
				"email": placeholder, "email_norm": placeholder, "status": StatusErased,
				"source": "", "locale": "", "updated_at": at, "unsubscribed_at": at,
			}).Error
		},
		func() error { return db.Where("subscriber_id = ?", id).Delete(&Subscription{}).Error },
		func() error {
			return db.Model(&ConsentEvent{}).Where("subscriber_id = ?", id).
				Updates(map[string]any{"ip": "", "user_agent": "", "source_url": ""}).Error
		},
		func() error {
			return db.Model(&Delivery{}).Where("subscriber_id = ?", id).
				Updates(map[string]any{"to_address": "", "data": "{}"}).Error
		},
		func() error {
			return db.Model(&Delivery{}).Where("subscriber_id = ? AND status IN ?", id,
				[]string{DeliveryPending, DeliverySending}).Update("status", DeliverySkipped).Error
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("erase subscriber: %w", err)
		}
	}
	return nil
}

// SuppressionHash is the stored form of a normalised address in the
// suppression list.
func SuppressionHash(norm string) string {
	sum := sha256.Sum256([]byte("herald-suppression-v1\x00" + norm))
	return hex.EncodeToString(sum[:])
}

// Suppress adds an address (by its normalised form) to the suppression list;
// an address already listed keeps its first reason.
func (s *Store) Suppress(ctx context.Context, norm, reason string, at time.Time) error {
	row := Suppression{Hash: SuppressionHash(norm), Reason: reason, CreatedAt: at}
	err := s.w.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "hash"}},
		DoNothing: true,
	}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	return nil
}

// Unsuppress removes an address from the suppression list if its reason is
// one of reasons.
func (s *Store) Unsuppress(ctx context.Context, norm string, reasons ...string) error {
	return s.w.WithContext(ctx).Where("hash = ? AND reason IN ?", SuppressionHash(norm), reasons).
		Delete(&Suppression{}).Error
}

// Suppressions returns the suppression reason for each of these normalised
// addresses that is suppressed, keyed by normalised address.
func (s *Store) Suppressions(ctx context.Context, norms []string) (map[string]string, error) {
	out := map[string]string{}
	if len(norms) == 0 {
		return out, nil
	}
	byHash := make(map[string]string, len(norms))
	hashes := make([]string, 0, len(norms))
	for _, n := range norms {
		h := SuppressionHash(n)
		byHash[h] = n
		hashes = append(hashes, h)
	}
	if tx := s.sqlTx(); tx != nil && s.hot != nil && len(norms) <= 64 {
		return out, s.suppressionsSQLite(ctx, tx, byHash, out)
	}
	for start := 0; start < len(hashes); start += 500 {
		var rows []Suppression
		if err := s.r.WithContext(ctx).Where("hash IN ?", hashes[start:min(start+500, len(hashes))]).Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("suppressions: %w", err)
		}
		for _, r := range rows {
			out[byHash[r.Hash]] = r.Reason
		}
	}
	return out, nil
}

// SubscriberCounts returns how many subscribers have each status.
func (s *Store) SubscriberCounts(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		Status string
		N      int64
	}
	err := s.r.WithContext(ctx).Model(&Subscriber{}).Select("status, COUNT(*) AS n").Group("status").Scan(&rows).Error
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, err
}

// SubscribersAfter returns up to limit subscribers with id > afterID, in id
// order, leaving out erased ones (keyset pagination for streaming exports).
func (s *Store) SubscribersAfter(ctx context.Context, afterID int64, limit int) ([]Subscriber, error) {
	var out []Subscriber
	err := s.r.WithContext(ctx).Where("id > ? AND status <> ?", afterID, StatusErased).Order("id").Limit(limit).Find(&out).Error
	return out, err
}

// SubscriptionsOf returns the subscriptions of these subscribers, keyed by
// subscriber id, each list ordered by section slug.
func (s *Store) SubscriptionsOf(ctx context.Context, ids []int64) (map[int64][]SubscriptionView, error) {
	out := map[int64][]SubscriptionView{}
	for start := 0; start < len(ids); start += 500 {
		var rows []struct {
			SubscriberID int64
			SubscriptionView
		}
		err := s.r.WithContext(ctx).Table("subscriptions").
			Select("subscriptions.subscriber_id, subscriptions.section_id, sections.slug, sections.name, subscriptions.frequency").
			Joins("JOIN sections ON sections.id = subscriptions.section_id").
			Where("subscriptions.subscriber_id IN ?", ids[start:min(start+500, len(ids))]).
			Order("sections.slug").Scan(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("subscriptions of: %w", err)
		}
		for _, r := range rows {
			out[r.SubscriberID] = append(out[r.SubscriberID], r.SubscriptionView)
		}
	}
	return out, nil
}
