package stream

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ratingslab/lab/services/eventformat"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/serve"
	"github.com/ratingslab/lab/services/webserver"
)

// contractError maps a failure to encode a rating: a registry that refused
// the producer's schema is a definite failure (500, nothing produced); a
// registry that cannot be reached is a dependency outage (503).
func contractError(err error) error {
	var refused *eventformat.RefusedError
	if errors.As(err, &refused) {
		return &webserver.RefusedError{Err: err}
	}
	return &webserver.UnavailableError{Dependency: "schema registry", RetryAfter: time.Second, Err: err}
}

// ContractAnswer is what POST /admin/contract answers: the contract now
// deployed and, in Avro, the registry's decision on its schema.
type ContractAnswer struct {
	Contract model.Contract `json:"contract"`
	Format   model.Format   `json:"format"`
	// Registry is "accepted", "refused" or "unreachable" (Avro), or "" (JSON:
	// no registry decides).
	Registry string `json:"registry,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// registerContractAdmin adds the schema-change fault's endpoint:
//
//	POST   /admin/contract {"contract":"v2-rename-field"}  deploys another rating contract
//	DELETE /admin/contract                                  back to v1
//	GET    /admin/contract                                  what is deployed
//
// The deploy happens whatever the registry says; the answer carries its
// decision so the fault's journal entry shows it.
func registerContractAdmin(srv *serve.Server, codec *model.Codec) {
	deploy := func(w http.ResponseWriter, r *http.Request, c model.Contract) {
		ctx, cancel := context.WithTimeout(r.Context(), eventformat.RequestTimeout)
		defer cancel()
		err := codec.SetContract(ctx, c)
		serve.WriteJSON(w, http.StatusOK, contractAnswer(codec, err))
	}
	srv.HandleAdmin("POST /admin/contract", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Contract string `json:"contract"`
		}
		if err := serve.DecodeJSON(w, r, &req); err != nil {
			serve.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		c, err := model.ParseContract(req.Contract)
		if err != nil {
			serve.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		deploy(w, r, c)
	}))
	srv.HandleAdmin("DELETE /admin/contract", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deploy(w, r, model.ContractV1)
	}))
	srv.HandleAdmin("GET /admin/contract", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve.WriteJSON(w, http.StatusOK, ContractAnswer{Contract: codec.Contract(), Format: codec.Format()})
	}))
}

func contractAnswer(codec *model.Codec, err error) ContractAnswer {
	a := ContractAnswer{Contract: codec.Contract(), Format: codec.Format()}
	if codec.Format() != model.FormatAvro {
		return a
	}
	var refused *eventformat.RefusedError
	switch {
	case err == nil:
		a.Registry = "accepted"
	case errors.As(err, &refused):
		a.Registry, a.Detail = "refused", err.Error()
	default:
		a.Registry, a.Detail = "unreachable", err.Error()
	}
	return a
}
