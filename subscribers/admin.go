package subscribers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"herald/models"
)

// This file is what the admin pages do to readers: an editor's changes are
// consent events like the reader's own, with the editor named as the form,
// and an import can be previewed before anything is written.

// AdminMeta is the RequestMeta of an editor's change to a reader. It names
// the editor in the event's form field and leaves the personal fields
// (IP, user agent) blank: they describe the reader's requests, not the
// editor's, and the audit log has the editor's.
func AdminMeta(editorEmail string) RequestMeta {
	return RequestMeta{Form: clip("admin:"+editorEmail, 64)}
}

// SearchPrefix turns what an editor typed in the address search into a
// prefix of the normalised form: trimmed and lower-cased, with a complete
// address normalised as signup does (its domain in ASCII form).
func SearchPrefix(q string) string {
	q = strings.TrimSpace(q)
	if _, norm, err := ParseAddress(q); err == nil {
		return norm
	}
	// Control characters match no address, and Postgres refuses NUL.
	q = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(q, ""))
	return strings.ToLower(q)
}

// ErrNotEditable is returned for a change to a reader whose state does not
// allow it (erased, or unsubscribed: only the reader can subscribe again).
var ErrNotEditable = errors.New("this reader's subscriptions cannot be changed")

// SetSubscriptions is an editor's change of a reader's subscriptions,
// recorded as a preferences consent event. It never changes the reader's
// status: an editor may correct what a reader follows but cannot give
// consent for them, so an unsubscribed or erased reader is refused. An
// empty list unsubscribes, as it does in the preference centre.
func (s *Service) SetSubscriptions(ctx context.Context, id int64, choices []Choice, meta RequestMeta) error {
	list, secs, err := s.resolveChoices(ctx, choices)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return s.UnsubscribeByID(ctx, id, meta)
	}
	return s.store.Tx(ctx, func(tx *models.Store) error {
		sub, err := tx.LockSubscriber(ctx, id)
		if err != nil {
			return err
		}
		if sub.Status == models.StatusUnsubscribed || sub.Status == models.StatusErased {
			return ErrNotEditable
		}
		now := s.now()
		for i := range list {
			list[i].CreatedAt = now
		}
		if err := tx.ReplaceSubscriptions(ctx, map[int64][]models.Subscription{sub.ID: list}); err != nil {
			return err
		}
		return tx.AppendConsentEvents(ctx, []*models.ConsentEvent{{
			SubscriberID: sub.ID, Kind: models.ConsentPreferences, At: now, Form: meta.Form,
			Sections: joinSpace(secs),
		}})
	})
}

// UnsubscribeByID unsubscribes a reader by id (an editor acting on a request).
// A reader who is not active or pending is left as they are.
func (s *Service) UnsubscribeByID(ctx context.Context, id int64, meta RequestMeta) error {
	if _, err := s.store.SubscriberByID(ctx, id); err != nil {
		return err
	}
	return s.unsubscribeByID(ctx, id, meta)
}

// ImportFileError is a problem with an uploaded file as a whole (empty, not
// CSV, no header): its message is for the editor.
type ImportFileError struct{ Msg string }

func (e *ImportFileError) Error() string { return e.Msg }

// ImportProblem is one row an import would not write.
type ImportProblem struct {
	Line    int
	Message string
}

// ImportPreview says what ImportCSV would do with a file.
type ImportPreview struct {
	// Rows counts the data rows; each is New, Known or Invalid.
	Rows    int
	New     int
	Known   int
	Invalid int
	// Of the new rows: Active ones have their confirmed_at recorded as an
	// import consent event; Pending ones wait for a confirmation.
	Active       int
	Pending      int
	Unsubscribed int
	// Confirmations is how many confirmation emails would be queued.
	Confirmations int
	// Problems are the first maxPreviewProblems rows not imported.
	Problems []ImportProblem
	// MoreProblems counts the problems left out of Problems.
	MoreProblems int
}

const maxPreviewProblems = 50

// PreviewImport reads a CSV file as ImportCSV would and counts what it
// would do, writing nothing. A file that cannot be imported at all gets an
// *ImportFileError.
func (s *Service) PreviewImport(ctx context.Context, r io.Reader, sendConfirmations bool) (*ImportPreview, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4096)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, err
	}
	if len(bytes.TrimSpace(head)) == 0 {
		return nil, &ImportFileError{"The file is empty."}
	}
	if !looksLikeText(head) {
		return nil, &ImportFileError{"This is not a CSV file: save the spreadsheet as CSV (UTF-8) and upload that."}
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, &ImportFileError{"The first row is not a CSV header row: " + csvErrText(err)}
	}
	get, ok := importColumns(header)
	if !ok {
		return nil, &ImportFileError{"The first row must name the columns and include \"email\" (the export's columns are " +
			strings.Join(CSVHeader, ",") + ")."}
	}
	bySlug, err := s.sectionsBySlug(ctx)
	if err != nil {
		return nil, err
	}

	p := &ImportPreview{}
	problem := func(line int, msg string) {
		if len(p.Problems) < maxPreviewProblems {
			p.Problems = append(p.Problems, ImportProblem{Line: line, Message: msg})
		} else {
			p.MoreProblems++
		}
	}
	// ImportCSV reports a repeat within one chunk as a duplicate, and skips
	// a repeat of an earlier chunk's row as already known (the earlier row
	// is in the database by then). The preview follows it: earlier holds a
	// 64-bit hash of every earlier chunk's address (8 bytes a row rather
	// than the address).
	earlier := map[uint64]struct{}{}
	err = readImportRows(ctx, cr, get, bySlug, s.now(),
		func(line int, msg string) {
			p.Invalid++
			problem(line, msg)
		},
		func(chunk []*importRow) error {
			norms := make([]string, len(chunk))
			for i, row := range chunk {
				norms[i] = row.norm
			}
			known, err := s.store.KnownAddresses(ctx, norms)
			if err != nil {
				return err
			}
			suppressed, err := s.store.Suppressions(ctx, norms)
			if err != nil {
				return err
			}
			for _, row := range chunk {
				h := hashNorm(row.norm)
				_, repeat := earlier[h]
				switch reason, supp := suppressed[row.norm]; {
				case known[row.norm] || repeat:
					problem(row.line, "already a subscriber; left as it is")
					p.Known++
				case supp:
					problem(row.line, "suppressed ("+reason+"); not imported")
					p.Known++
				default:
					p.New++
					switch row.status {
					case models.StatusActive:
						p.Active++
					case models.StatusUnsubscribed:
						p.Unsubscribed++
					default:
						p.Pending++
						if sendConfirmations {
							p.Confirmations++
						}
					}
				}
				earlier[h] = struct{}{}
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	p.Rows = p.New + p.Known + p.Invalid
	if p.Rows == 0 {
		return nil, &ImportFileError{"The file has a header row but no subscribers below it."}
	}
	return p, nil
}

// looksLikeText reports whether the start of a file could be CSV: UTF-8
// text without NUL bytes (a spreadsheet's own format, an image or a PDF
// fails one or the other).
func looksLikeText(head []byte) bool {
	if bytes.IndexByte(head, 0) >= 0 {
		return false
	}
	// The peek may end inside a character: drop a trailing partial rune.
	for i := 0; i < utf8.UTFMax && len(head) > 0 && !utf8.Valid(head); i++ {
		head = head[:len(head)-1]
	}
	return utf8.Valid(head)
}

func csvErrText(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d: %v", pe.Line, pe.Err)
	}
	return err.Error()
}

func hashNorm(norm string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(norm))
	return h.Sum64()
}
