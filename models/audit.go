package models

import (
	"context"
	"fmt"
	"time"
)

// AuditEntry records one admin action: who did what to what, and when.
// Entries are only ever added.
type AuditEntry struct {
	ID        int64     `gorm:"primaryKey"`
	At        time.Time `gorm:"not null;index"`
	UserID    int64     `gorm:"index"`
	UserEmail string    `gorm:"size:320"`
	Action    string    `gorm:"size:64;not null;index"`
	Target    string    `gorm:"size:256"`
	Detail    string    `gorm:"size:1024"`
	IP        string    `gorm:"size:64"`
}

// AddAudit appends an entry to the audit log.
func (s *Store) AddAudit(ctx context.Context, e *AuditEntry) error {
	e.Target = clipString(e.Target, 256)
	e.Detail = clipString(e.Detail, 1024)
	e.At = e.At.UTC()
	if err := s.w.WithContext(ctx).Create(e).Error; err != nil {
		return fmt.Errorf("add audit entry: %w", err)
	}
	return nil
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	Action string
	UserID int64
	// BeforeID pages: only entries with a smaller id (0: from the newest).
	BeforeID int64
	Limit    int
}

// AuditEntries lists audit entries, newest first.
func (s *Store) AuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	q := s.r.WithContext(ctx).Order("id DESC")
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.UserID != 0 {
		q = q.Where("user_id = ?", f.UserID)
	}
	if f.BeforeID > 0 {
		q = q.Where("id < ?", f.BeforeID)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	var out []AuditEntry
	if err := q.Limit(f.Limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("audit entries: %w", err)
	}
	return out, nil
}

// AuditActions lists the distinct actions recorded, for the page's filter.
func (s *Store) AuditActions(ctx context.Context) ([]string, error) {
	var out []string
	err := s.r.WithContext(ctx).Model(&AuditEntry{}).Distinct("action").Order("action").Pluck("action", &out).Error
	return out, err
}
