package models

import (
	"context"
	"fmt"
)

// CreateSection adds a section; a taken slug is reported by IsUniqueViolation.
func (s *Store) CreateSection(ctx context.Context, sec *Section) error {
	if err := s.w.WithContext(ctx).Create(sec).Error; err != nil {
		return fmt.Errorf("create section: %w", err)
	}
	return nil
}

// Sections lists every section by name.
func (s *Store) Sections(ctx context.Context) ([]Section, error) {
	var out []Section
	err := s.r.WithContext(ctx).Order("name").Find(&out).Error
	return out, err
}

// SectionsBySlug returns the sections with these slugs, keyed by slug.
func (s *Store) SectionsBySlug(ctx context.Context, slugs []string) (map[string]Section, error) {
	out := map[string]Section{}
	if len(slugs) == 0 {
		return out, nil
	}
	var rows []Section
	if err := s.r.WithContext(ctx).Where("slug IN ?", slugs).Find(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.Slug] = r
	}
	return out, nil
}

// CountSections returns how many sections exist.
func (s *Store) CountSections(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.WithContext(ctx).Model(&Section{}).Count(&n).Error
	return n, err
}
