package mailer

import (
	"context"
	"fmt"
	"testing"

	"herald/config"
	"herald/mailer/smtptest"
)

// TestSendBatchOutcomes: one pipelined exchange carries a batch in which
// readers are refused at RCPT (550 and 451) and after DATA (554), and one
// connection drops at RCPT and another after DATA. Every other message is
// delivered exactly once, each refusal is reported for its own message
// only, and the messages a dropped connection left unanswered are sent on
// a new one.
func TestSendBatchOutcomes(t *testing.T) {
	srv := smtptest.New(t)
	s := newSMTP(t, SMTPConfig{Servers: []config.SMTPServer{srv.Config()}, Connections: 1})
	rules := map[int]smtptest.Rule{
		2:  {Code: 550, Enhanced: "5.1.1", Message: "no such user"},
		5:  {Code: 451, Enhanced: "4.3.0", Times: 1},
		7:  {Code: 554, Enhanced: "5.7.1", AtData: true},
		9:  {Drop: true, Times: 1},
		13: {Drop: true, AtData: true, Times: 1},
	}
	var ms []*Message
	for i := range 16 {
		to := fmt.Sprintf("r%02d@example.org", i)
		if r, ok := rules[i]; ok {
			srv.On(to, r)
		}
		ms = append(ms, messageTo(to, i))
	}
	// A message that cannot be built fails alone, before any connection.
	bad := messageTo("r99@example.org", 99)
	bad.Subject = "two\r\nlines"
	ms = append(ms[:4], append([]*Message{bad}, ms[4:]...)...)

	errs := s.SendBatch(context.Background(), ms)
	if len(errs) != len(ms) {
		t.Fatalf("%d results for %d messages", len(errs), len(ms))
	}
	want := map[string]string{ // recipient: "" (sent), "permanent", "temporary"
		"r02@example.org": "permanent", "r05@example.org": "temporary", "r07@example.org": "permanent",
		"r09@example.org": "temporary", "r13@example.org": "temporary", "r99@example.org": "permanent",
	}
	for i, m := range ms {
		got := ""
		if errs[i] != nil {
			se := sendErr(t, errs[i])
			got = "temporary"
			if se.Permanent {
				got = "permanent"
			}
		}
		if got != want[m.To] {
			t.Errorf("%s: %q (%v), want %q", m.To, got, errs[i], want[m.To])
		}
		n := len(srv.MessagesTo(m.To))
		if (got == "") != (n == 1) || n > 1 {
			t.Errorf("%s: %d messages at the server, outcome %q", m.To, n, got)
		}
	}
	if se := sendErr(t, errs[2]); se.Code != 550 || se.Enhanced != "5.1.1" {
		t.Errorf("r02's error names the reply: %v", se)
	}
	// Two drops: three connections in all.
	if c := srv.Connections(); c != 3 {
		t.Errorf("%d connections, want 3", c)
	}
	// The connection left at the end carries the next batch.
	if errs := s.SendBatch(context.Background(), []*Message{messageTo("r05@example.org", 20), messageTo("r13@example.org", 21)}); errs[0] != nil || errs[1] != nil {
		t.Fatalf("second batch: %v", errs)
	}
	if c := srv.Connections(); c != 3 {
		t.Errorf("%d connections after the second batch, want 3", c)
	}
}
