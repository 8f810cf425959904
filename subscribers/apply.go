package subscribers

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"herald/models"
)

// confirmationData is what a confirmation delivery carries to its renderer.
type confirmationData struct {
	Sections  []string `json:"sections"`
	Frequency string   `json:"frequency"`
	Expires   int64    `json:"expires"`
}

// apply writes one round of signups (distinct addresses) inside tx, set-based:
// one statement each for new subscribers, subscriptions, consent events and
// deliveries. It returns how many deliveries it queued for a claim, and
// those it leased to the worker (see Config.Handoff), which the caller
// hands over after the commit or releases after a failure.
func (s *Service) apply(ctx context.Context, tx *models.Store, jobs []*job) (queued int, out handout, err error) {
	now := s.now()
	norms := make([]string, len(jobs))
	for i, j := range jobs {
		norms[i] = j.norm
	}
	existing, suppressed, err := tx.SignupState(ctx, norms)
	if err != nil {
		return 0, out, err
	}
	blocked := func(norm string) bool {
		r, ok := suppressed[norm]
		return ok && r != models.SuppressErased
	}

	var fresh []*models.Subscriber
	for _, j := range jobs {
		if existing[j.norm] != nil || blocked(j.norm) {
			continue
		}
		sub := &models.Subscriber{
			Email: j.typed, EmailNorm: j.norm, Status: models.StatusPending,
			Source: j.in.Source, Locale: j.in.Locale, CreatedAt: now, UpdatedAt: now,
			// A new address always gets its confirmation: count it at insert.
			LastConfirmSentAt: &now, ConfirmDayStart: &now, ConfirmDayCount: 1,
		}
		fresh = append(fresh, sub)
		existing[j.norm] = sub
	}
	if err := tx.CreateSubscribers(ctx, fresh); err != nil {
		return 0, out, err
	}
	isFresh := make(map[int64]bool, len(fresh))
	for _, sub := range fresh {
		isFresh[sub.ID] = true
	}

	subs := map[int64][]models.Subscription{}      // existing subscribers: replaced
	freshSubs := map[int64][]models.Subscription{} // new subscribers: inserted
	var events, firstEvents []*models.ConsentEvent
	var deliveries []*models.Delivery
	var recipients []*models.Subscriber // recipients[i] gets deliveries[i]
	var changed []*models.Subscriber
	for _, j := range jobs {
		sub := existing[j.norm]
		if sub == nil || blocked(j.norm) {
			continue // suppressed (bounce, complaint, manual): accept silently, send nothing
		}
		switch sub.Status {
		case models.StatusActive:
			if sub.LastNoticeSentAt == nil || now.Sub(*sub.LastNoticeSentAt) >= noticeGap {
				sub.LastNoticeSentAt = &now
				changed = append(changed, sub)
				deliveries = append(deliveries, s.delivery(models.KindNotice, sub.ID, now, "{}"))
				recipients = append(recipients, sub)
			}
			continue
		case models.StatusPending, models.StatusUnsubscribed:
		default:
			continue // bounced, complained, erased: nothing to send
		}
		list := make([]models.Subscription, 0, len(j.sections))
		names := make([]string, 0, len(j.sections))
		for _, sec := range j.sections {
			list = append(list, models.Subscription{SectionID: sec.ID, Frequency: j.in.Frequency, CreatedAt: now})
			names = append(names, sec.Name)
		}
		if isFresh[sub.ID] {
			freshSubs[sub.ID] = list
		} else {
			subs[sub.ID] = list
		}
		if !isFresh[sub.ID] {
			sub.Status = models.StatusPending
			sub.UpdatedAt = now
			changed = append(changed, sub)
		}
		ev := &models.ConsentEvent{
			SubscriberID: sub.ID, Kind: models.ConsentSignup, At: now,
			IP: j.in.IP, UserAgent: j.in.UserAgent, SourceURL: firstNonEmpty(j.in.PageURL, j.in.Source),
			Form: j.in.Form, ConsentText: s.cfg.ConsentText, PolicyVersion: s.cfg.PolicyVersion,
			Sections: sectionList(j.sections, j.in.Frequency),
		}
		if isFresh[sub.ID] || allowConfirmation(sub, now) {
			data, _ := json.Marshal(confirmationData{Sections: names, Frequency: j.in.Frequency, Expires: now.Add(s.cfg.ConfirmTTL).Unix()})
			d := s.delivery(models.KindConfirmation, sub.ID, now, string(data))
			ev.MessageID = d.MessageID
			deliveries = append(deliveries, d)
			recipients = append(recipients, sub)
			if !isFresh[sub.ID] && !containsSub(changed, sub) {
				changed = append(changed, sub)
			}
		}
		if isFresh[sub.ID] {
			firstEvents = append(firstEvents, ev)
		} else {
			events = append(events, ev)
		}
	}
	if err := tx.CreateSubscriptions(ctx, freshSubs); err != nil {
		return 0, out, err
	}
	if err := tx.ReplaceSubscriptions(ctx, subs); err != nil {
		return 0, out, err
	}
	if err := tx.AppendFirstConsentEvents(ctx, firstEvents); err != nil {
		return 0, out, err
	}
	if err := tx.AppendConsentEvents(ctx, events); err != nil {
		return 0, out, err
	}
	out = s.lease(now, deliveries, recipients)
	if err := tx.CreateDeliveries(ctx, deliveries); err != nil {
		return 0, out, err
	}
	for _, sub := range changed {
		if isFresh[sub.ID] {
			continue
		}
		if err := tx.SaveSubscriber(ctx, sub); err != nil {
			return 0, out, err
		}
	}
	return len(deliveries) - len(out.ds), out, nil
}

// lease commits as many of deliveries as the worker has room for already
// leased to it (status sending, one attempt), to be handed over.
func (s *Service) lease(now time.Time, deliveries []*models.Delivery, recipients []*models.Subscriber) handout {
	if s.cfg.Handoff == nil || len(deliveries) == 0 {
		return handout{}
	}
	lease, n := s.cfg.Handoff.Reserve(len(deliveries))
	until := now.Add(lease)
	for _, d := range deliveries[:n] {
		d.Status, d.LeaseUntil, d.Attempts = models.DeliverySending, &until, 1
	}
	return handout{ds: deliveries[:n], subs: recipients[:n]}
}

// allowConfirmation applies the per-address confirmation limits and, when a
// confirmation may go, records it on sub.
func allowConfirmation(sub *models.Subscriber, now time.Time) bool {
	if sub.LastConfirmSentAt != nil && now.Sub(*sub.LastConfirmSentAt) < confirmGap {
		return false
	}
	if sub.ConfirmDayStart == nil || now.Sub(*sub.ConfirmDayStart) >= 24*time.Hour {
		sub.ConfirmDayStart = &now
		sub.ConfirmDayCount = 0
	}
	if sub.ConfirmDayCount >= confirmPerDay {
		return false
	}
	sub.ConfirmDayCount++
	sub.LastConfirmSentAt = &now
	return true
}

func containsSub(list []*models.Subscriber, sub *models.Subscriber) bool {
	for _, s := range list {
		if s == sub {
			return true
		}
	}
	return false
}

func (s *Service) delivery(kind string, subscriberID int64, now time.Time, data string) *models.Delivery {
	id := subscriberID
	return &models.Delivery{
		Kind: kind, SubscriberID: &id, Status: models.DeliveryPending, NextAttemptAt: now,
		MessageID: s.messageID(), Data: data, CreatedAt: now,
	}
}

// sectionList records the chosen sections as "slug:frequency" pairs.
func sectionList(secs []models.Section, freq string) string {
	parts := make([]string, len(secs))
	for i, sec := range secs {
		parts[i] = sec.Slug + ":" + freq
	}
	return strings.Join(parts, " ")
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
