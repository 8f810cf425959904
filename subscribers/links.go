package subscribers

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"herald/models"
)

// RequestMeta is what Herald records about the request behind a consent event.
type RequestMeta struct {
	IP        string
	UserAgent string
	Form      string
}

// ErrLinkSuperseded is returned for a confirm link issued before the reader
// unsubscribed: it must not subscribe them again.
var ErrLinkSuperseded = errors.New("this link is no longer valid")

// Lookup verifies a token and returns its subscriber. An authentic, expired
// confirm token returns the subscriber with ErrTokenExpired.
func (s *Service) Lookup(ctx context.Context, p Purpose, token string) (*models.Subscriber, error) {
	id, _, err := s.cfg.Tokens.Verify(p, token, s.cfg.Now())
	if err != nil && !errors.Is(err, ErrTokenExpired) {
		return nil, err
	}
	sub, lerr := s.store.SubscriberByID(ctx, id)
	if lerr != nil {
		if errors.Is(lerr, models.ErrNotFound) {
			return nil, ErrTokenInvalid
		}
		return nil, lerr
	}
	if sub.Status == models.StatusErased {
		return nil, ErrTokenInvalid
	}
	return sub, err
}

// Confirm activates the subscriber of a confirm token (POST only: mail
// scanners pre-fetch GETs). Confirming twice is harmless.
func (s *Service) Confirm(ctx context.Context, token string, meta RequestMeta) (*models.Subscriber, error) {
	id, expires, err := s.cfg.Tokens.Verify(PurposeConfirm, token, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	issued := expires.Add(-s.cfg.ConfirmTTL)
	var out *models.Subscriber
	err = s.store.Tx(ctx, func(tx *models.Store) error {
		sub, err := tx.LockSubscriber(ctx, id)
		if err != nil {
			if errors.Is(err, models.ErrNotFound) {
				return ErrTokenInvalid
			}
			return err
		}
		out = sub
		switch sub.Status {
		case models.StatusActive:
			return nil
		case models.StatusPending:
		case models.StatusUnsubscribed:
			if sub.UnsubscribedAt != nil && sub.UnsubscribedAt.After(issued) {
				return ErrLinkSuperseded
			}
		default:
			return ErrTokenInvalid
		}
		now := s.now()
		if err := tx.SetSubscriberStatus(ctx, sub.ID, models.StatusActive, now); err != nil {
			return err
		}
		if err := tx.Unsuppress(ctx, sub.EmailNorm, models.SuppressErased); err != nil {
			return err
		}
		subs, err := tx.Subscriptions(ctx, sub.ID)
		if err != nil {
			return err
		}
		sub.Status, sub.ConfirmedAt = models.StatusActive, &now
		return tx.AppendConsentEvents(ctx, []*models.ConsentEvent{{
			SubscriberID: sub.ID, Kind: models.ConsentConfirm, At: now, IP: meta.IP, UserAgent: meta.UserAgent,
			Form: meta.Form, ConsentText: s.cfg.ConsentText, PolicyVersion: s.cfg.PolicyVersion,
			Sections: viewList(subs),
		}})
	})
	return out, err
}

// ResendConfirmation queues a fresh confirmation for the subscriber of an
// authentic (possibly expired) confirm token, within the per-address limits.
// It answers the same whether or not a mail was queued.
func (s *Service) ResendConfirmation(ctx context.Context, token string) error {
	id, _, err := s.cfg.Tokens.Verify(PurposeConfirm, token, s.cfg.Now())
	if err != nil && !errors.Is(err, ErrTokenExpired) {
		return err
	}
	queued := false
	err = s.store.Tx(ctx, func(tx *models.Store) error {
		sub, err := tx.LockSubscriber(ctx, id)
		if err != nil {
			if errors.Is(err, models.ErrNotFound) {
				return ErrTokenInvalid
			}
			return err
		}
		now := s.now()
		if sub.Status != models.StatusPending || !allowConfirmation(sub, now) {
			return nil
		}
		subs, err := tx.Subscriptions(ctx, sub.ID)
		if err != nil {
			return err
		}
		data := confirmationData{Expires: now.Add(s.cfg.ConfirmTTL).Unix()}
		for _, v := range subs {
			data.Sections = append(data.Sections, v.Name)
			data.Frequency = v.Frequency
		}
		raw, _ := json.Marshal(data)
		if err := tx.SaveSubscriber(ctx, sub); err != nil {
			return err
		}
		queued = true
		return tx.CreateDeliveries(ctx, []*models.Delivery{s.delivery(models.KindConfirmation, sub.ID, now, string(raw))})
	})
	if queued {
		s.cfg.OnEnqueue()
	}
	return err
}

// Unsubscribe ends every subscription of the token's subscriber at once
// (RFC 8058 one-click). Unsubscribing twice is harmless.
func (s *Service) Unsubscribe(ctx context.Context, token string, meta RequestMeta) error {
	id, _, err := s.cfg.Tokens.Verify(PurposeUnsubscribe, token, s.cfg.Now())
	if err != nil {
		return err
	}
	return s.unsubscribeByID(ctx, id, meta)
}

func viewList(subs []models.SubscriptionView) string {
	out := ""
	for i, v := range subs {
		if i > 0 {
			out += " "
		}
		out += v.Slug + ":" + v.Frequency
	}
	return out
}

// TokenIssued returns when a confirm token with this expiry was made.
func (s *Service) TokenIssued(expires time.Time) time.Time { return expires.Add(-s.cfg.ConfirmTTL) }
