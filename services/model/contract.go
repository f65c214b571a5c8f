package model

import (
	"fmt"
	"strings"
)

// Contract is a version of the rating contract that a producer may deploy:
// the schema-change experiment makes the producer side of each variant
// switch from v1 to one of the v2 changes while the consumers keep reading v1.
type Contract string

const (
	// ContractV1 is the lab's contract (schemas/ratings-value.avsc, the
	// JSON shape of RatingEvent.MarshalJSON, ratings-rpc's RateRequest).
	ContractV1 Contract = "v1"
	// ContractAddOptional adds a field with a default ("channel": "web"):
	// backward and forward compatible under Avro's resolution rules.
	ContractAddOptional Contract = "v2-add-optional"
	// ContractRenameField renames the rating field to "score": incompatible.
	ContractRenameField Contract = "v2-rename-field"
	// ContractChangeType sends the rating as a string ("7.5"): incompatible.
	ContractChangeType Contract = "v2-change-type"
)

// Contracts lists every contract version, v1 first.
var Contracts = []Contract{ContractV1, ContractAddOptional, ContractRenameField, ContractChangeType}

// ParseContract reads a contract name ("" is v1).
func ParseContract(s string) (Contract, error) {
	if s == "" {
		return ContractV1, nil
	}
	for _, c := range Contracts {
		if string(c) == s {
			return c, nil
		}
	}
	names := make([]string, len(Contracts))
	for i, c := range Contracts {
		names[i] = string(c)
	}
	return "", fmt.Errorf("contract %q: want one of %s", s, strings.Join(names, ", "))
}

// Compatible says whether the change keeps v1 readers working under Avro's
// resolution rules (and so passes a BACKWARD registry check).
func (c Contract) Compatible() bool { return c == ContractV1 || c == ContractAddOptional }

// AppendRatingJSON writes a rating event in the JSON shape of contract c.
func AppendRatingJSON(b []byte, c Contract, e RatingEvent) []byte {
	v1, _ := e.MarshalJSON()
	switch c {
	case ContractAddOptional:
		b = append(b, v1[:len(v1)-1]...)
		return append(b, `,"channel":"web"}`...)
	case ContractRenameField:
		return append(b, strings.Replace(string(v1), `"rating":`, `"score":`, 1)...)
	case ContractChangeType:
		// "rating":7.5, → "rating":"7.5",
		i := strings.Index(string(v1), `"rating":`) + len(`"rating":`)
		j := i + strings.IndexByte(string(v1[i:]), ',')
		b = append(b, v1[:i]...)
		b = append(b, '"')
		b = append(b, v1[i:j]...)
		b = append(b, '"')
		return append(b, v1[j:]...)
	}
	return append(b, v1...)
}
