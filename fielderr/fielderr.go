// Package fielderr is the error type for input that fails validation: a
// message for the person per field, which the HTTP layer shows next to the
// field (forms) or under "fields" (JSON).
package fielderr

import (
	"sort"
	"strings"
)

// Errors maps a field name to a message saying what is wrong with it.
type Errors map[string]string

// Error lists the fields and their messages in a stable order.
func (e Errors) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e[k])
	}
	return strings.Join(parts, "; ")
}
