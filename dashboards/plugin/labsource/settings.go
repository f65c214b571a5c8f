package labsource

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// Settings are the data source's jsonData in Grafana: where the lab keeps
// its state (journals, ledgers, lab.json) and, optionally, where its
// control API listens. Either is enough: the state dir alone serves past
// runs (and finds a running lab's control API in its lab.json); the control
// API alone serves the live query.
type Settings struct {
	// StateDir is the lab's state directory (`lab --dir`, .lab by default),
	// as the Grafana server sees it.
	StateDir string `json:"stateDir"`
	// ControlURL is the supervisor's control API ("http://127.0.0.1:7700");
	// empty: read from <StateDir>/lab.json while a lab runs there.
	ControlURL string `json:"controlUrl"`
}

// ParseSettings reads jsonData. Unknown fields are ignored (Grafana adds
// its own); a malformed value is an error naming it.
func ParseSettings(raw []byte) (Settings, error) {
	var s Settings
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := json.Unmarshal(raw, &s); err != nil {
			return s, fmt.Errorf("data source settings (jsonData): %w", err)
		}
	}
	s.StateDir = strings.TrimSpace(s.StateDir)
	s.ControlURL = strings.TrimRight(strings.TrimSpace(s.ControlURL), "/")
	if s.StateDir == "" && s.ControlURL == "" {
		return s, fmt.Errorf("data source settings: set stateDir (the lab's state directory, e.g. /work/.lab) or controlUrl (the lab's control API, e.g. http://127.0.0.1:7700)")
	}
	if s.ControlURL != "" {
		u, err := url.Parse(s.ControlURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return s, fmt.Errorf("data source settings: controlUrl %q: want http://host:port", s.ControlURL)
		}
	}
	return s, nil
}
