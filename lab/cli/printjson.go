package cli

import (
	"encoding/json"
	"io"
)

// printJSON writes v as indented JSON, the form of every command's --json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
