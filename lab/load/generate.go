package load

import (
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Kind is what a request does. Its String is the `kind` metric label.
type Kind uint8

const (
	KindRating Kind = iota // POST /api/ratings
	KindMovie              // GET /api/movies/{id}
	KindList               // GET /api/movies?offset=&limit=
)

var kindNames = [...]string{KindRating: "rating", KindMovie: "movie", KindList: "list"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Kinds lists every kind, in label order.
var Kinds = []Kind{KindRating, KindMovie, KindList}

// Request is one request of the sequence, independent of the variant it is
// sent to.
type Request struct {
	Seq     uint64
	Kind    Kind
	MovieID int64 // rating, movie
	UserID  int64 // rating
	Tenths  int64 // rating, in tenths of a point (75 = 7.5)
	Offset  int   // list
	Limit   int   // list
	// Unknown marks a request for a movie outside the catalog; the expected
	// answer is a rejection (4xx), not a success.
	Unknown bool
	// NewMovie marks a rating of a movie added to the catalog during the
	// run (CatalogEdit): MovieID is that movie's.
	NewMovie bool
}

// Source is a sequence of requests: the scenario's generator, or a replayed
// ratings file.
type Source interface {
	// Request returns request number seq, or false past the end.
	Request(seq uint64) (Request, bool)
}

// Generator derives the scenario's request sequence from its seed. Request
// seq depends only on (scenario, seed, seq), so every variant, every
// goroutine and the k6 scripts (loadtests/lib/generator.js) get the same one.
type Generator struct {
	seed                   uint32
	rating, ratingPlusMove float64 // cumulative mix weights
	mixTotal               float64
	movieMin, movieN       int64
	zipfCDF                []float64 // nil: uniform popularity
	unknownFraction        float64
	userMin, userN         int64
	ratings                Ratings
	lo, hi                 int64 // rating bounds in tenths
	weights                []weightedValue
	listLimit              int
	listPages              int64
}

// NewGenerator prepares the tables of a validated scenario.
func NewGenerator(s *Scenario) (*Generator, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		seed:            s.Seed,
		rating:          s.Mix.Rating,
		ratingPlusMove:  s.Mix.Rating + s.Mix.Movie,
		mixTotal:        s.Mix.Rating + s.Mix.Movie + s.Mix.List,
		movieMin:        s.Movies.MinID,
		movieN:          s.Movies.MaxID - s.Movies.MinID + 1,
		unknownFraction: s.Movies.UnknownFraction,
		userMin:         s.Users.MinID,
		userN:           s.Users.MaxID - s.Users.MinID + 1,
		ratings:         s.Ratings,
		lo:              int64(math.Round(s.Ratings.Min * 10)),
		hi:              int64(math.Round(s.Ratings.Max * 10)),
		listLimit:       s.List.Limit,
	}
	g.listPages = (g.movieN + int64(g.listLimit) - 1) / int64(g.listLimit)
	if s.Movies.Popularity == "zipf" {
		g.zipfCDF = zipfCDF(g.movieN, s.Movies.ZipfS)
	}
	if s.Ratings.Distribution == "weighted" {
		w, err := s.Ratings.weightTable()
		if err != nil {
			return nil, err
		}
		g.weights = w
	}
	return g, nil
}

// zipfCDF is the cumulative distribution of ranks 1..n with weight 1/rank^s.
func zipfCDF(n int64, s float64) []float64 {
	cdf := make([]float64, n)
	var sum float64
	for k := int64(1); k <= n; k++ {
		sum += math.Pow(float64(k), -s)
		cdf[k-1] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	return cdf
}

// Request implements Source. The draw order is part of the format (see
// loadtests/README.md): kind, unknown?, movie/page, user, rating, rating2.
func (g *Generator) Request(seq uint64) (Request, bool) {
	if seq > math.MaxUint32 {
		return Request{}, false
	}
	d := requestDraws(g.seed, uint32(seq))
	uKind, uUnknown, uMovie, uUser, uRating, uRating2 := d.float(), d.float(), d.float(), d.float(), d.float(), d.float()

	r := Request{Seq: seq}
	switch x := uKind * g.mixTotal; {
	case x < g.rating:
		r.Kind = KindRating
	case x < g.ratingPlusMove:
		r.Kind = KindMovie
	default:
		r.Kind = KindList
	}
	if r.Kind == KindList {
		r.Limit = g.listLimit
		r.Offset = int(int64(uMovie*float64(g.listPages))) * g.listLimit
		return r, true
	}
	if uUnknown < g.unknownFraction {
		r.Unknown = true
		r.MovieID = UnknownMovieBase + int64(uMovie*unknownMovieSpan)
	} else {
		r.MovieID = g.movieMin + g.movieRank(uMovie)
	}
	if r.Kind == KindRating {
		r.UserID = g.userMin + int64(uUser*float64(g.userN))
		r.Tenths = g.ratingTenths(uRating, uRating2)
	}
	return r, true
}

// movieRank maps u in [0,1) to a 0-based popularity rank.
func (g *Generator) movieRank(u float64) int64 {
	if g.zipfCDF == nil {
		return int64(u * float64(g.movieN))
	}
	i := sort.Search(len(g.zipfCDF), func(i int) bool { return u < g.zipfCDF[i] })
	if i == len(g.zipfCDF) { // u rounded above the last cumulative weight
		i--
	}
	return int64(i)
}

func (g *Generator) ratingTenths(u, u2 float64) int64 {
	switch g.ratings.Distribution {
	case "normal":
		z := math.Sqrt(-2*math.Log(1-u)) * math.Cos(2*math.Pi*u2)
		v := g.ratings.Mean + g.ratings.StdDev*z
		var t int64
		if g.ratings.Decimals == 1 {
			t = int64(math.Floor(v*10 + 0.5))
		} else {
			t = int64(math.Floor(v+0.5)) * 10
		}
		return min(max(t, g.lo), g.hi)
	case "weighted":
		x := u * g.weights[len(g.weights)-1].cum
		for _, w := range g.weights {
			if x < w.cum {
				return w.tenths
			}
		}
		return g.weights[len(g.weights)-1].tenths
	default: // uniform
		if g.ratings.Decimals == 1 {
			return g.lo + int64(u*float64(g.hi-g.lo+1))
		}
		return (g.lo/10 + int64(u*float64((g.hi-g.lo)/10+1))) * 10
	}
}

// RequestID is the request id of request seq of a run, sent to one variant.
// It is unique per run and variant and deterministic given the run id.
func RequestID(runID, variant string, seq uint64) string {
	return runID + "-" + variant + "-" + strconv.FormatUint(seq, 10)
}

// FormatTenths prints a rating the way the API takes it: "7" or "7.5".
func FormatTenths(t int64) string {
	return string(appendTenths(nil, t))
}

func appendTenths(b []byte, t int64) []byte {
	b = strconv.AppendInt(b, t/10, 10)
	if t%10 != 0 {
		b = append(b, '.', byte('0'+t%10))
	}
	return b
}

// appendRatingBody renders the POST /api/ratings body without reflection;
// the engine builds one per request.
func appendRatingBody(b []byte, r Request, requestID string) []byte {
	b = append(b, `{"request_id":`...)
	b = strconv.AppendQuote(b, requestID)
	b = append(b, `,"movie_id":`...)
	b = strconv.AppendInt(b, r.MovieID, 10)
	if r.UserID > 0 { // replayed files may not say who rated
		b = append(b, `,"user_id":`...)
		b = strconv.AppendInt(b, r.UserID, 10)
	}
	b = append(b, `,"rating":`...)
	b = appendTenths(b, r.Tenths)
	return append(b, '}')
}

// Path is the request's path and query on the public API.
func (r Request) Path() string {
	switch r.Kind {
	case KindRating:
		return "/api/ratings"
	case KindMovie:
		return "/api/movies/" + strconv.FormatInt(r.MovieID, 10)
	case KindList:
		return fmt.Sprintf("/api/movies?offset=%d&limit=%d", r.Offset, r.Limit)
	}
	return "/"
}

// Method is the request's HTTP method.
func (r Request) Method() string {
	if r.Kind == KindRating {
		return "POST"
	}
	return "GET"
}

// Requests is a fixed sequence held in memory (for replay tools that build
// their own); request seq is Requests[seq], renumbered to seq.
type Requests []Request

// Request implements Source.
func (rs Requests) Request(seq uint64) (Request, bool) {
	if seq >= uint64(len(rs)) {
		return Request{}, false
	}
	r := rs[seq]
	r.Seq = seq
	return r, true
}

// Len is the number of requests; the engine ends the run after the last.
func (rs Requests) Len() uint64 { return uint64(len(rs)) }
