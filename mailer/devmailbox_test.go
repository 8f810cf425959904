package mailer

import (
	"context"
	"testing"

	"herald/models"
	"herald/models/testdb"
)

func TestDevMailboxKeepsMessage(t *testing.T) {
	testdb.Each(t, func(t *testing.T, _ string, store *models.Store) { testDevMailbox(t, store) })
}

func testDevMailbox(t *testing.T, store *models.Store) {
	box := NewDevMailbox(store)
	ctx := context.Background()
	m := testMessage()
	if err := box.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	list, err := store.MailboxMessages(ctx, 10, 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("mailbox has %d messages (%v), want 1", len(list), err)
	}
	got, err := store.MailboxMessage(ctx, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.MessageID != m.MessageID || got.From != m.From || got.To != m.To || got.Subject != m.Subject ||
		got.HTML != m.HTML || got.Text != m.Text {
		t.Errorf("stored %+v, want the fields of %+v", got, m)
	}
	p := parseRaw(t, []byte(got.Raw))
	if p.header.Get("List-Unsubscribe") != "<"+m.ListUnsubscribe+">" || len(p.parts) != 2 {
		t.Errorf("raw message does not carry the built headers and parts:\n%s", got.Raw)
	}

	m.Subject = "x\nBcc: victim@example.net"
	if se := sendErr(t, box.Send(ctx, m)); !se.Permanent {
		t.Errorf("invalid message: got %+v, want permanent", se)
	}
}
