package subscribers

import (
	"context"
	"errors"
	"time"

	"herald/models"
)

// Preferences is what the preference centre shows.
type Preferences struct {
	Subscriber    *models.Subscriber
	Subscriptions []models.SubscriptionView
	Sections      []models.Section
}

// Preferences returns the preference centre's view for a preferences token.
func (s *Service) Preferences(ctx context.Context, token string) (*Preferences, error) {
	sub, err := s.Lookup(ctx, PurposePreferences, token)
	if err != nil {
		return nil, err
	}
	subs, err := s.store.Subscriptions(ctx, sub.ID)
	if err != nil {
		return nil, err
	}
	secs, err := s.store.Sections(ctx)
	if err != nil {
		return nil, err
	}
	return &Preferences{Subscriber: sub, Subscriptions: subs, Sections: secs}, nil
}

// Choice is one section at one frequency, chosen in the preference centre.
type Choice struct {
	Section   string
	Frequency string
}

// UpdatePreferences replaces the reader's subscriptions with choices. An
// empty choice list unsubscribes. A reader who had unsubscribed and picks
// sections again is active again: the preference link is proof of the
// address, and the change is recorded as a consent event.
func (s *Service) UpdatePreferences(ctx context.Context, token string, choices []Choice, meta RequestMeta) error {
	id, _, err := s.cfg.Tokens.Verify(PurposePreferences, token, s.cfg.Now())
	if err != nil {
		return err
	}
	list, secs, err := s.resolveChoices(ctx, choices)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return s.unsubscribeByID(ctx, id, meta)
	}
	return s.store.Tx(ctx, func(tx *models.Store) error {
		sub, err := tx.LockSubscriber(ctx, id)
		if err != nil {
			return lookupErr(err)
		}
		switch sub.Status {
		case models.StatusActive, models.StatusUnsubscribed:
		case models.StatusPending:
			// Choosing sections does not confirm the address: the confirm
			// link does. Pending readers may still change what they picked.
		default:
			return ErrTokenInvalid
		}
		now := s.now()
		for i := range list {
			list[i].CreatedAt = now
		}
		if err := tx.ReplaceSubscriptions(ctx, map[int64][]models.Subscription{sub.ID: list}); err != nil {
			return err
		}
		if sub.Status == models.StatusUnsubscribed {
			if err := tx.SetSubscriberStatus(ctx, sub.ID, models.StatusActive, now); err != nil {
				return err
			}
		}
		return tx.AppendConsentEvents(ctx, []*models.ConsentEvent{{
			SubscriberID: sub.ID, Kind: models.ConsentPreferences, At: now, IP: meta.IP, UserAgent: meta.UserAgent,
			Form: meta.Form, ConsentText: s.cfg.ConsentText, PolicyVersion: s.cfg.PolicyVersion, Sections: joinSpace(secs),
		}})
	})
}

// UnsubscribeAll is the preference centre's "unsubscribe from everything".
func (s *Service) UnsubscribeAll(ctx context.Context, token string, meta RequestMeta) error {
	id, _, err := s.cfg.Tokens.Verify(PurposePreferences, token, s.cfg.Now())
	if err != nil {
		return err
	}
	return s.unsubscribeByID(ctx, id, meta)
}

func (s *Service) unsubscribeByID(ctx context.Context, id int64, meta RequestMeta) error {
	return s.store.Tx(ctx, func(tx *models.Store) error {
		sub, err := tx.LockSubscriber(ctx, id)
		if err != nil {
			return lookupErr(err)
		}
		if sub.Status != models.StatusActive && sub.Status != models.StatusPending {
			return nil
		}
		now := s.now()
		if err := tx.SetSubscriberStatus(ctx, id, models.StatusUnsubscribed, now); err != nil {
			return err
		}
		return tx.AppendConsentEvents(ctx, []*models.ConsentEvent{{
			SubscriberID: id, Kind: models.ConsentUnsubscribe, At: now, IP: meta.IP, UserAgent: meta.UserAgent, Form: meta.Form,
		}})
	})
}

// DataExport is everything Herald holds about a reader, as they download it.
type DataExport struct {
	Email          string                `json:"email"`
	Status         string                `json:"status"`
	Source         string                `json:"source,omitempty"`
	CreatedAt      time.Time             `json:"created_at"`
	ConfirmedAt    *time.Time            `json:"confirmed_at,omitempty"`
	UnsubscribedAt *time.Time            `json:"unsubscribed_at,omitempty"`
	Subscriptions  []ExportSubscription  `json:"subscriptions"`
	ConsentEvents  []ExportConsentEvent  `json:"consent_events"`
	Deliveries     []ExportDeliveryEntry `json:"emails"`
}

// ExportSubscription is one subscription in a DataExport.
type ExportSubscription struct {
	Section   string `json:"section"`
	Name      string `json:"name"`
	Frequency string `json:"frequency"`
}

// ExportConsentEvent is one consent event in a DataExport.
type ExportConsentEvent struct {
	Kind          string    `json:"kind"`
	At            time.Time `json:"at"`
	IP            string    `json:"ip,omitempty"`
	UserAgent     string    `json:"user_agent,omitempty"`
	SourceURL     string    `json:"source_url,omitempty"`
	ConsentText   string    `json:"consent_text,omitempty"`
	PolicyVersion string    `json:"privacy_policy_version,omitempty"`
	Sections      string    `json:"sections,omitempty"`
	Hash          string    `json:"hash"`
}

// ExportDeliveryEntry is one email in a DataExport.
type ExportDeliveryEntry struct {
	Kind   string     `json:"kind"`
	Status string     `json:"status"`
	SentAt *time.Time `json:"sent_at,omitempty"`
}

// Export returns the reader's data for a preferences token.
func (s *Service) Export(ctx context.Context, token string) (*DataExport, error) {
	sub, err := s.Lookup(ctx, PurposePreferences, token)
	if err != nil {
		return nil, err
	}
	subs, err := s.store.Subscriptions(ctx, sub.ID)
	if err != nil {
		return nil, err
	}
	evs, err := s.store.ConsentEvents(ctx, sub.ID)
	if err != nil {
		return nil, err
	}
	ds, err := s.store.DeliveriesFor(ctx, sub.ID, 1000)
	if err != nil {
		return nil, err
	}
	out := &DataExport{
		Email: sub.Email, Status: sub.Status, Source: sub.Source, CreatedAt: sub.CreatedAt,
		ConfirmedAt: sub.ConfirmedAt, UnsubscribedAt: sub.UnsubscribedAt,
		Subscriptions: []ExportSubscription{}, ConsentEvents: []ExportConsentEvent{}, Deliveries: []ExportDeliveryEntry{},
	}
	for _, v := range subs {
		out.Subscriptions = append(out.Subscriptions, ExportSubscription{Section: v.Slug, Name: v.Name, Frequency: v.Frequency})
	}
	for _, e := range evs {
		out.ConsentEvents = append(out.ConsentEvents, ExportConsentEvent{
			Kind: e.Kind, At: e.At, IP: e.IP, UserAgent: e.UserAgent, SourceURL: e.SourceURL,
			ConsentText: e.ConsentText, PolicyVersion: e.PolicyVersion, Sections: e.Sections, Hash: e.Hash,
		})
	}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, ExportDeliveryEntry{Kind: d.Kind, Status: d.Status, SentAt: d.SentAt})
	}
	return out, nil
}

// Erase removes the reader's personal data, leaving only the suppression
// hash (so nothing is ever sent to the address again unless its owner signs
// up and confirms anew) and the consent chain with its personal fields
// blanked.
func (s *Service) Erase(ctx context.Context, token string, meta RequestMeta) error {
	id, _, err := s.cfg.Tokens.Verify(PurposePreferences, token, s.cfg.Now())
	if err != nil {
		return err
	}
	return s.EraseSubscriber(ctx, id, meta)
}

// EraseSubscriber erases one subscriber by id (the preference centre, or an
// editor acting on a request).
func (s *Service) EraseSubscriber(ctx context.Context, id int64, meta RequestMeta) error {
	return s.store.Tx(ctx, func(tx *models.Store) error {
		sub, err := tx.LockSubscriber(ctx, id)
		if err != nil {
			return lookupErr(err)
		}
		if sub.Status == models.StatusErased {
			return nil
		}
		now := s.now()
		if err := tx.Suppress(ctx, sub.EmailNorm, models.SuppressErased, now); err != nil {
			return err
		}
		if err := tx.EraseSubscriber(ctx, id, now); err != nil {
			return err
		}
		// The erase event carries no personal fields: the request's IP is
		// personal data too.
		return tx.AppendConsentEvents(ctx, []*models.ConsentEvent{{
			SubscriberID: id, Kind: models.ConsentErase, At: now, Form: meta.Form,
		}})
	})
}

func lookupErr(err error) error {
	if errors.Is(err, models.ErrNotFound) {
		return ErrTokenInvalid
	}
	return err
}

func joinSpace(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += " "
		}
		out += p
	}
	return out
}

// resolveChoices checks a reader's choices of sections and frequencies and
// returns them as subscriptions, with their "slug:frequency" list for the
// consent event.
func (s *Service) resolveChoices(ctx context.Context, choices []Choice) ([]models.Subscription, []string, error) {
	slugs := make([]string, 0, len(choices))
	for _, c := range choices {
		switch c.Frequency {
		case models.FrequencyInstant, models.FrequencyDaily, models.FrequencyWeekly:
		default:
			return nil, nil, FieldErrors{"frequency": "Choose how often: instant, daily or weekly."}
		}
		slugs = append(slugs, c.Section)
	}
	found, err := s.store.SectionsBySlug(ctx, slugs)
	if err != nil {
		return nil, nil, err
	}
	list := make([]models.Subscription, 0, len(choices))
	secs := make([]string, 0, len(choices))
	for _, c := range choices {
		sec, ok := found[c.Section]
		if !ok {
			return nil, nil, FieldErrors{"sections": "Unknown section: " + clip(c.Section, 40) + "."}
		}
		list = append(list, models.Subscription{SectionID: sec.ID, Frequency: c.Frequency})
		secs = append(secs, sec.Slug+":"+c.Frequency)
	}
	return list, secs, nil
}
