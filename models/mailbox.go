package models

import (
	"context"
	"fmt"
)

// SaveMailboxMessage keeps a message in the dev mailbox.
func (s *Store) SaveMailboxMessage(ctx context.Context, m *MailboxMessage) error {
	if err := s.w.WithContext(ctx).Create(m).Error; err != nil {
		return fmt.Errorf("save mailbox message: %w", err)
	}
	return nil
}

// MailboxMessages lists dev-mailbox messages, newest first, without bodies.
func (s *Store) MailboxMessages(ctx context.Context, limit, offset int) ([]MailboxMessage, error) {
	var out []MailboxMessage
	err := s.r.WithContext(ctx).Select("id, message_id, \"from\", \"to\", subject, created_at").
		Order("id DESC").Limit(limit).Offset(offset).Find(&out).Error
	return out, err
}

// MailboxMessage returns one dev-mailbox message with its bodies.
func (s *Store) MailboxMessage(ctx context.Context, id int64) (*MailboxMessage, error) {
	var m MailboxMessage
	if err := s.r.WithContext(ctx).First(&m, id).Error; err != nil {
		return nil, notFound(err)
	}
	return &m, nil
}

// ClearMailbox deletes every dev-mailbox message.
func (s *Store) ClearMailbox(ctx context.Context) error {
	return s.w.WithContext(ctx).Where("1 = 1").Delete(&MailboxMessage{}).Error
}
