package models

import (
	"context"
	"fmt"
	"time"
)

// CreateAdminUser adds an admin user; a taken email is reported by IsUniqueViolation.
func (s *Store) CreateAdminUser(ctx context.Context, u *AdminUser) error {
	if err := s.w.WithContext(ctx).Create(u).Error; err != nil {
		return fmt.Errorf("create admin user: %w", err)
	}
	return nil
}

// SetAdminPassword replaces a user's password hash.
func (s *Store) SetAdminPassword(ctx context.Context, id int64, hash string, at time.Time) error {
	return s.w.WithContext(ctx).Model(&AdminUser{}).Where("id = ?", id).
		Updates(map[string]any{"password_hash": hash, "updated_at": at}).Error
}

// AdminUserByEmail returns the admin user with this (lower-cased) email.
func (s *Store) AdminUserByEmail(ctx context.Context, email string) (*AdminUser, error) {
	var u AdminUser
	if err := s.r.WithContext(ctx).Where("email = ?", email).First(&u).Error; err != nil {
		return nil, notFound(err)
	}
	return &u, nil
}

// CountAdminUsers returns how many admin users exist.
func (s *Store) CountAdminUsers(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.WithContext(ctx).Model(&AdminUser{}).Count(&n).Error
	return n, err
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, sess *Session) error {
	return s.w.WithContext(ctx).Create(sess).Error
}

// SessionWithUser returns a live session and its user.
func (s *Store) SessionWithUser(ctx context.Context, id string, now time.Time) (*Session, *AdminUser, error) {
	var sess Session
	if err := s.r.WithContext(ctx).Where("id = ? AND expires_at > ?", id, now.UTC()).First(&sess).Error; err != nil {
		return nil, nil, notFound(err)
	}
	var u AdminUser
	if err := s.r.WithContext(ctx).First(&u, sess.UserID).Error; err != nil {
		return nil, nil, notFound(err)
	}
	return &sess, &u, nil
}

// TouchSession records activity and extends the idle expiry, never past max.
func (s *Store) TouchSession(ctx context.Context, id string, now, expires time.Time) error {
	return s.w.WithContext(ctx).Model(&Session{}).Where("id = ?", id).
		Updates(map[string]any{"last_seen_at": now.UTC(), "expires_at": expires.UTC()}).Error
}

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.w.WithContext(ctx).Where("id = ?", id).Delete(&Session{}).Error
}

// DeleteUserSessions ends every session of a user.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) error {
	return s.w.WithContext(ctx).Where("user_id = ?", userID).Delete(&Session{}).Error
}

// CreateAPIKey stores a new API key (its hash).
func (s *Store) CreateAPIKey(ctx context.Context, k *APIKey) error {
	if err := s.w.WithContext(ctx).Create(k).Error; err != nil {
		return fmt.Errorf("create api key: %w", err)
	}
	return nil
}

// APIKeyByHash returns the unrevoked key with this hash.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*APIKey, error) {
	var k APIKey
	if err := s.r.WithContext(ctx).Where("hash = ? AND revoked_at IS NULL", hash).First(&k).Error; err != nil {
		return nil, notFound(err)
	}
	return &k, nil
}

// TouchAPIKey records a key's use.
func (s *Store) TouchAPIKey(ctx context.Context, id int64, at time.Time) error {
	return s.w.WithContext(ctx).Model(&APIKey{}).Where("id = ?", id).Update("last_used_at", at.UTC()).Error
}

// AdminUserByID returns one admin user.
func (s *Store) AdminUserByID(ctx context.Context, id int64) (*AdminUser, error) {
	var u AdminUser
	if err := s.r.WithContext(ctx).First(&u, id).Error; err != nil {
		return nil, notFound(err)
	}
	return &u, nil
}

// AdminUsers lists every admin user by email.
func (s *Store) AdminUsers(ctx context.Context) ([]AdminUser, error) {
	var out []AdminUser
	err := s.r.WithContext(ctx).Order("email").Find(&out).Error
	return out, err
}

// SetAdminRole changes a user's role.
func (s *Store) SetAdminRole(ctx context.Context, id int64, role string, at time.Time) error {
	res := s.w.WithContext(ctx).Model(&AdminUser{}).Where("id = ?", id).
		Updates(map[string]any{"role": role, "updated_at": at.UTC()})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// CountAdmins counts the users with the admin role.
func (s *Store) CountAdmins(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.WithContext(ctx).Model(&AdminUser{}).Where("role = ?", RoleAdmin).Count(&n).Error
	return n, err
}

// DeleteAdminUser removes a user and their sessions.
func (s *Store) DeleteAdminUser(ctx context.Context, id int64) error {
	return s.Tx(ctx, func(tx *Store) error {
		if err := tx.w.WithContext(ctx).Where("user_id = ?", id).Delete(&Session{}).Error; err != nil {
			return err
		}
		res := tx.w.WithContext(ctx).Delete(&AdminUser{}, id)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// DeleteOtherSessions ends every session of a user but one.
func (s *Store) DeleteOtherSessions(ctx context.Context, userID int64, keepID string) error {
	return s.w.WithContext(ctx).Where("user_id = ? AND id <> ?", userID, keepID).Delete(&Session{}).Error
}

// APIKeys lists every API key, newest first, revoked ones too.
func (s *Store) APIKeys(ctx context.Context) ([]APIKey, error) {
	var out []APIKey
	err := s.r.WithContext(ctx).Order("id DESC").Find(&out).Error
	return out, err
}

// RevokeAPIKey revokes a key; it stops working at once.
func (s *Store) RevokeAPIKey(ctx context.Context, id int64, at time.Time) error {
	res := s.w.WithContext(ctx).Model(&APIKey{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", at.UTC())
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// RecordLoginFailure counts a wrong password for a user. The max-th one in
// a row locks the account until lockedUntil and starts the count again.
// One statement, so instances counting at once lose nothing.
func (s *Store) RecordLoginFailure(ctx context.Context, id int64, max int, lockedUntil time.Time) error {
	err := s.w.WithContext(ctx).Exec(`UPDATE admin_users SET
		locked_until = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE locked_until END,
		failed_logins = CASE WHEN failed_logins + 1 >= ? THEN 0 ELSE failed_logins + 1 END
		WHERE id = ?`, max, lockedUntil.UTC(), max, id).Error
	if err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return nil
}

// ClearLoginFailures forgets a user's wrong passwords after a good login.
func (s *Store) ClearLoginFailures(ctx context.Context, id int64) error {
	return s.w.WithContext(ctx).Model(&AdminUser{}).Where("id = ? AND failed_logins > 0", id).
		Update("failed_logins", 0).Error
}
