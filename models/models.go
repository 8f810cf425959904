// Package models holds Herald's GORM entities and the Store, the only code
// that talks to the database.
package models

import "time"

// Subscriber statuses.
const (
	StatusPending      = "pending"
	StatusActive       = "active"
	StatusUnsubscribed = "unsubscribed"
	StatusBounced      = "bounced"
	StatusComplained   = "complained"
	StatusErased       = "erased"
)

// Frequencies a reader can choose.
const (
	FrequencyInstant = "instant"
	FrequencyDaily   = "daily"
	FrequencyWeekly  = "weekly"
)

// Subscriber is one reader's address and state. Email is kept as typed;
// EmailNorm is the normalised form the uniqueness rule applies to.
type Subscriber struct {
	ID             int64  `gorm:"primaryKey"`
	Email          string `gorm:"size:320;not null"`
	EmailNorm      string `gorm:"size:320;not null;uniqueIndex"`
	Status         string `gorm:"size:16;not null;index"`
	Source         string `gorm:"size:512"`
	Locale         string `gorm:"size:16"`
	CreatedAt      time.Time
	UpdatedAt      time.Time
	ConfirmedAt    *time.Time
	UnsubscribedAt *time.Time
	// Throttle state for confirmation and notice emails.
	LastConfirmSentAt *time.Time
	ConfirmDayStart   *time.Time
	ConfirmDayCount   int
	LastNoticeSentAt  *time.Time
}

// Section is a part of the site readers can follow, such as "Politics UK".
type Section struct {
	ID          int64  `gorm:"primaryKey"`
	Slug        string `gorm:"size:64;not null;uniqueIndex"`
	Name        string `gorm:"size:128;not null"`
	Description string `gorm:"size:512"`
	CreatedAt   time.Time
}

// Subscription says a subscriber follows a section at a frequency.
type Subscription struct {
	ID           int64  `gorm:"primaryKey"`
	SubscriberID int64  `gorm:"not null;uniqueIndex:idx_subscription_pair"`
	SectionID    int64  `gorm:"not null;uniqueIndex:idx_subscription_pair;index"`
	Frequency    string `gorm:"size:16;not null"`
	CreatedAt    time.Time
}

// Consent event kinds.
const (
	ConsentSignup      = "signup"
	ConsentConfirm     = "confirm"
	ConsentPreferences = "preferences"
	ConsentUnsubscribe = "unsubscribe"
	ConsentImport      = "import"
	ConsentErase       = "erase"
)

// ConsentEvent is one entry of a subscriber's append-only consent ledger.
// Hash covers PrevHash, the non-personal fields and PersonalDigest (a digest
// of the personal fields), so erasure can blank the personal fields and the
// chain still verifies.
type ConsentEvent struct {
	ID             int64     `gorm:"primaryKey"`
	SubscriberID   int64     `gorm:"not null;index"`
	Kind           string    `gorm:"size:16;not null"`
	At             time.Time `gorm:"index"`
	IP             string    `gorm:"size:64"`
	UserAgent      string    `gorm:"size:512"`
	SourceURL      string    `gorm:"size:1024"`
	Form           string    `gorm:"size:64"`
	ConsentText    string    `gorm:"size:1024"`
	PolicyVersion  string    `gorm:"size:64"`
	Sections       string    `gorm:"size:1024"`
	MessageID      string    `gorm:"size:256"`
	PersonalDigest string    `gorm:"size:64;not null"`
	PrevHash       string    `gorm:"size:64;not null"`
	Hash           string    `gorm:"size:64;not null"`
}

// Suppression reasons.
const (
	SuppressBounce    = "bounce"
	SuppressComplaint = "complaint"
	SuppressErased    = "erased"
	SuppressManual    = "manual"
)

// Suppression blocks every send to an address, known only by its hash.
type Suppression struct {
	ID        int64  `gorm:"primaryKey"`
	Hash      string `gorm:"size:64;not null;uniqueIndex"`
	Reason    string `gorm:"size:16;not null"`
	CreatedAt time.Time
}

// Delivery kinds and statuses.
const (
	KindConfirmation = "confirmation"
	KindDigest       = "digest"
	KindNotice       = "notice"
	KindTest         = "test"

	DeliveryPending = "pending"
	DeliverySending = "sending"
	DeliverySent    = "sent"
	DeliveryFailed  = "failed"
	DeliverySkipped = "skipped"
)

// Delivery is one email Herald will send: the outbox. Every email is a row
// here before it goes out, and is marked sent only after the SMTP server
// accepted it.
type Delivery struct {
	ID   int64  `gorm:"primaryKey"`
	Kind string `gorm:"size:16;not null"`
	// The unique (subscriber_id, digest_id) index also serves lookups by
	// subscriber alone, so subscriber_id has no index of its own: one
	// index fewer to write for every email queued.
	SubscriberID  *int64    `gorm:"uniqueIndex:idx_delivery_digest_subscriber"`
	DigestID      *int64    `gorm:"uniqueIndex:idx_delivery_digest_subscriber;index:idx_delivery_digest_status,priority:1"`
	ToAddress     string    `gorm:"size:320"`
	Status        string    `gorm:"size:16;not null;index:idx_delivery_queue,priority:1;index:idx_delivery_digest_status,priority:2"`
	NextAttemptAt time.Time `gorm:"index:idx_delivery_queue,priority:2"`
	Attempts      int
	LeaseUntil    *time.Time
	LastError     string `gorm:"size:1024"`
	MessageID     string `gorm:"size:256"`
	// Data holds the few values the template needs (JSON), fixed at enqueue.
	Data      string `gorm:"type:text"`
	CreatedAt time.Time
	SentAt    *time.Time
}

// Admin roles.
const (
	RoleAdmin  = "admin"
	RoleEditor = "editor"
)

// AdminUser is someone who may log in to /admin.
type AdminUser struct {
	ID           int64  `gorm:"primaryKey"`
	Email        string `gorm:"size:320;not null;uniqueIndex"`
	PasswordHash string `gorm:"size:256;not null"`
	Role         string `gorm:"size:16;not null"`
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// FailedLogins counts wrong passwords since the last lock or success;
	// LockedUntil refuses logins after too many, on every instance.
	FailedLogins int `gorm:"not null;default:0"`
	LockedUntil  *time.Time
}

// Session is a logged-in admin. ID is the SHA-256 of the cookie value, so a
// database leak does not hand out sessions.
type Session struct {
	ID         string `gorm:"primaryKey;size:64"`
	UserID     int64  `gorm:"not null;index"`
	CSRFToken  string `gorm:"size:64;not null"`
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time `gorm:"index"`
}

// APIKey lets a program use /api/v1. Only the key's SHA-256 is stored.
type APIKey struct {
	ID         int64  `gorm:"primaryKey"`
	Name       string `gorm:"size:128;not null"`
	Prefix     string `gorm:"size:16;not null"`
	Hash       string `gorm:"size:64;not null;uniqueIndex"`
	Scopes     string `gorm:"size:256;not null"`
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// MailboxMessage is an email kept by the dev mailbox instead of being sent.
type MailboxMessage struct {
	ID        int64     `gorm:"primaryKey"`
	MessageID string    `gorm:"size:256;index"`
	From      string    `gorm:"size:320"`
	To        string    `gorm:"size:320;index"`
	Subject   string    `gorm:"size:512"`
	HTML      string    `gorm:"type:text"`
	Text      string    `gorm:"type:text"`
	Raw       string    `gorm:"type:text"`
	CreatedAt time.Time `gorm:"index"`
}

// AllModels lists every entity Migrate creates.
func AllModels() []any {
	return []any{
		&Subscriber{}, &Section{}, &Subscription{}, &ConsentEvent{}, &Suppression{},
		&Delivery{}, &AdminUser{}, &Session{}, &APIKey{}, &MailboxMessage{},
		&Story{}, &StorySection{}, &Feed{}, &Digest{}, &DigestStory{}, &AuditEntry{},
	}
}
