package mailer

import (
	"context"
	"time"

	"herald/config"
	"herald/models"
)

// MailboxStore keeps dev-mailbox messages; *models.Store implements it.
type MailboxStore interface {
	SaveMailboxMessage(ctx context.Context, m *models.MailboxMessage) error
}

// DevMailbox is the Sender used when no SMTP relay is configured: it keeps
// each message in the database, where /admin/mailbox shows it, instead of
// sending it. It builds the message exactly as the SMTP transport would, so
// a message it accepts is one a relay would be handed.
type DevMailbox struct {
	store MailboxStore
	dkim  *config.DKIMConfig
}

// NewDevMailbox returns a DevMailbox writing to store.
func NewDevMailbox(store MailboxStore) *DevMailbox {
	return &DevMailbox{store: store}
}

// WithDKIM makes d sign each message with k, as the SMTP transport does,
// so that the kept raw message carries its DKIM-Signature; nil turns
// signing off. It returns d, and is called before the first Send.
func (d *DevMailbox) WithDKIM(k *config.DKIMConfig) *DevMailbox {
	d.dkim = k
	return d
}

// Send stores m. A message that cannot be built is a permanent *SendError;
// a database failure is a temporary one.
func (d *DevMailbox) Send(ctx context.Context, m *Message) error {
	raw, err := Render(m)
	if err != nil {
		return &SendError{Permanent: true, Err: err}
	}
	if raw, err = SignDKIM(raw, d.dkim); err != nil {
		return &SendError{Err: err}
	}
	err = d.store.SaveMailboxMessage(ctx, &models.MailboxMessage{
		MessageID: m.MessageID, From: m.From, To: m.To, Subject: m.Subject,
		HTML: m.HTML, Text: m.Text, Raw: string(raw), CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		return &SendError{Err: err}
	}
	return nil
}
