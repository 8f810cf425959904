// Package mailer builds email messages and hands them to an SMTP relay (a
// pool of persistent connections) or to the dev mailbox. It is the only
// package that imports go-mail.
package mailer

import (
	"context"
	"fmt"
	"time"
)

// Message is one email ready to send. Every header value is checked for
// CR/LF before it is used.
type Message struct {
	// MessageID is the Message-ID without angle brackets, e.g. "abc.123@example.com".
	MessageID string
	// From is "Name <addr@example.com>" or a bare address.
	From string
	// To is the single recipient address.
	To      string
	Subject string
	HTML    string
	Text    string
	// ListUnsubscribe, when set, is the one-click https URL: the message
	// gets List-Unsubscribe and List-Unsubscribe-Post (RFC 8058).
	ListUnsubscribe string
	// ListID and FeedbackID set List-Id and Feedback-ID when not empty.
	ListID     string
	FeedbackID string
	// Headers are extra headers. Each name may appear once and may not be
	// one Build sets itself.
	Headers [][2]string
	// Date is the Date header; zero means the time of building.
	Date time.Time
}

// Sender sends one message. Implementations are safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, m *Message) error
}

// BatchSender is a Sender that can also send several messages in one
// exchange (pipelined over one connection); errs[i] is ms[i]'s outcome.
type BatchSender interface {
	Sender
	SendBatch(ctx context.Context, ms []*Message) (errs []error)
}

// SendError is a failed send. Permanent errors (SMTP 5xx) must not be
// retried; everything else (4xx, network) may be.
type SendError struct {
	Permanent bool
	// Code is the SMTP reply code (0 for a network error).
	Code int
	// Enhanced is the enhanced status code such as "5.1.1", if known.
	Enhanced string
	Err      error
}

// Error says whether the failure is permanent and gives the SMTP reply.
func (e *SendError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Code != 0 {
		return fmt.Sprintf("%s SMTP error %d %s: %v", kind, e.Code, e.Enhanced, e.Err)
	}
	return fmt.Sprintf("%s error: %v", kind, e.Err)
}

// Unwrap returns the underlying error, so errors.Is and errors.As see it.
func (e *SendError) Unwrap() error { return e.Err }
