package rpc

import (
	"strconv"

	"github.com/ratingslab/lab/services/model"
)

// rateBody is the POST /ratings body of contract c: v1 is RateRequest
// (docs/openapi/rpc.yaml); the v2 changes are the same ones the log
// variant's schemas make (model.Contract), in JSON.
func rateBody(c model.Contract, r model.Rating) any {
	if c == model.ContractV1 || c == "" {
		return RateRequest{RequestID: r.RequestID, MovieID: r.MovieID, RatingTenths: r.Tenths, UserID: r.UserID}
	}
	body := map[string]any{"request_id": r.RequestID, "movie_id": r.MovieID}
	if r.UserID != 0 {
		body["user_id"] = r.UserID
	}
	switch c {
	case model.ContractAddOptional:
		body["rating_tenths"], body["channel"] = r.Tenths, "web"
	case model.ContractRenameField:
		body["score_tenths"] = r.Tenths
	case model.ContractChangeType:
		body["rating_tenths"] = strconv.FormatInt(r.Tenths, 10)
	}
	return body
}
