package models

import "time"

// Story origins.
const (
	OriginFeed   = "feed"
	OriginAPI    = "api"
	OriginEditor = "editor"
)

// Story is one published article. URL is its canonical address and the
// key that de-duplicates it; GUID is the feed's id for it, when it has one.
type Story struct {
	ID          int64  `gorm:"primaryKey"`
	URL         string `gorm:"size:2048;not null;uniqueIndex"`
	GUID        string `gorm:"size:1024;index"`
	Title       string `gorm:"size:512;not null"`
	Summary     string `gorm:"type:text"` // sanitised HTML
	ImageURL    string `gorm:"size:2048"`
	Author      string `gorm:"size:256"`
	Origin      string `gorm:"size:16;not null"`
	FeedID      *int64 `gorm:"index"`
	Breaking    bool
	Hidden      bool
	PublishedAt time.Time `gorm:"index"`
	CreatedAt   time.Time `gorm:"index"` // when Herald received it
	UpdatedAt   time.Time
}

// StorySection files a story under a section.
type StorySection struct {
	StoryID   int64 `gorm:"primaryKey;autoIncrement:false"`
	SectionID int64 `gorm:"primaryKey;autoIncrement:false;index"`
}

// Feed is an RSS or Atom feed Herald polls for stories.
type Feed struct {
	ID  int64  `gorm:"primaryKey"`
	URL string `gorm:"size:2048;not null;uniqueIndex"`
	// SectionID is where stories go when no category maps elsewhere.
	SectionID int64 `gorm:"not null"`
	// CategoryMap maps feed categories to section slugs (JSON object).
	CategoryMap  string `gorm:"type:text"`
	PollInterval int    // seconds
	ETag         string `gorm:"size:512"`
	LastModified string `gorm:"size:128"`
	LastPolledAt *time.Time
	NextPollAt   time.Time `gorm:"index"`
	LastStatus   string    `gorm:"size:32"` // ok, not-modified, error
	LastError    string    `gorm:"size:1024"`
	LastNew      int
	Failures     int
	CreatedAt    time.Time
}

// Digest kinds and statuses.
const (
	DigestAlert  = "alert"
	DigestDaily  = "daily"
	DigestWeekly = "weekly"
	DigestManual = "manual"

	DigestDraft     = "draft"
	DigestScheduled = "scheduled"
	DigestSending   = "sending"
	DigestPaused    = "paused"
	DigestSent      = "sent"
	DigestCancelled = "cancelled"
)

// Digest is one edition: a set of stories sent to an audience. Key makes
// scheduled editions idempotent ("daily:2026-11-25").
type Digest struct {
	ID      int64  `gorm:"primaryKey"`
	Key     string `gorm:"size:128;not null;uniqueIndex"`
	Kind    string `gorm:"size:16;not null;index"`
	Subject string `gorm:"size:512;not null"`
	Intro   string `gorm:"type:text"`
	Status  string `gorm:"size:16;not null;index;index:idx_digest_unfinished,priority:2"`
	// Audience: section slugs (space-separated; empty means every section
	// of the digest's stories) and frequencies (space-separated).
	Sections    string `gorm:"size:1024"`
	Frequencies string `gorm:"size:64"`
	PeriodStart time.Time
	PeriodEnd   time.Time
	ScheduledAt *time.Time `gorm:"index"`
	StartedAt   *time.Time
	FinishedAt  *time.Time
	PauseReason string `gorm:"size:512"`
	Recipients  int
	// The delivery counts, kept once the digest has ended (sent or
	// cancelled) with nothing of it in flight, when they can no longer
	// change: lists then need not count a million deliveries again.
	CountsFinal  bool `gorm:"not null;default:false;index:idx_digest_unfinished,priority:1"`
	FinalSent    int64
	FinalFailed  int64
	FinalSkipped int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// DigestStory places a story in a digest, in order.
type DigestStory struct {
	DigestID int64 `gorm:"primaryKey;autoIncrement:false"`
	StoryID  int64 `gorm:"primaryKey;autoIncrement:false;index"`
	Position int
}
