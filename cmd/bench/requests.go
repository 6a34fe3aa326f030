package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/crypto/bcrypt"
)

// What the load generator sends: GraphQL over HTTP to the server, and the
// baselines' direct driver calls and bcrypt comparisons.

// GraphQL operations, each with the prefix of a good answer.
var (
	typenameQuery = gqlBody(`{ __typename }`, nil)
	typenameWant  = []byte(`{"data":{"__typename":"Query"}}`)
	sessionQuery  = gqlBody(`{ session { id expiresAt } }`, nil)
	sessionWant   = []byte(`{"data":{"session":{"id":"`)
	meQuery       = gqlBody(`{ me { id username createdAt } }`, nil)
	meWant        = []byte(`{"data":{"me":{"id":"`)
	sessionsQuery = gqlBody(`{ sessions { id current createdAt } }`, nil)
	sessionsWant  = []byte(`{"data":{"sessions":[{"id":"`)
	loginWant     = []byte(`{"data":{"login":{"token":"`)
	deleteOthers  = gqlBody(`mutation { deleteOtherSessions }`, nil)
)

// deletedWant is the answer of deleteOthers that ended n sessions.
func deletedWant(n int) []byte {
	return fmt.Appendf(nil, `{"data":{"deleteOtherSessions":%d}}`, n)
}

const loginMutation = `mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }`

func gqlBody(query string, vars map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		panic(err) // constant input
	}
	return b
}

// gqlClient posts GraphQL requests over one keep-alive transport.
type gqlClient struct {
	url        string
	metricsURL string
	http       *http.Client
}

func newGQLClient(url, metricsURL string, conns int) *gqlClient {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &gqlClient{url: url, metricsURL: metricsURL, http: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// post sends body with the bearer header auth (none if empty). A non-200
// status, a GraphQL error or an answer that does not start with want is an
// error; check, if not nil, may refuse the answer too.
func (c *gqlClient) post(ctx context.Context, body []byte, auth string, want []byte, check func([]byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	switch {
	case err != nil:
		return fmt.Errorf("read answer: %w", err)
	case res.StatusCode != http.StatusOK:
		return fmt.Errorf("HTTP %d: %.200s", res.StatusCode, b)
	case bytes.Contains(b, []byte(`"errors"`)):
		return fmt.Errorf("GraphQL error: %.300s", b)
	case !bytes.HasPrefix(b, want):
		return fmt.Errorf("unexpected answer: %.200s", b)
	}
	if check != nil {
		return check(b)
	}
	return nil
}

// countIDs makes a check that the answer lists exactly n objects with an id.
func countIDs(n int) func([]byte) error {
	return func(b []byte) error {
		if got := bytes.Count(b, []byte(`"id":`)); got != n {
			return fmt.Errorf("got %d sessions, want %d: %.200s", got, n, b)
		}
		return nil
	}
}

// bearers turns tokens into Authorization header values once, so the load
// loop does not build strings.
func bearers(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = "Bearer " + t
	}
	return out
}

// rawLookup is the baseline of session and me: what one FindOne by _id on
// the sessions collection costs through the driver, answer read in full.
func rawLookup(coll *mongo.Collection, ids []string, pick func(w, i int) int) op {
	return func(ctx context.Context, w, i int) error {
		raw, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: ids[pick(w, i)]}}).Raw()
		if err != nil {
			return err
		}
		if _, err := raw.LookupErr("secretHash"); err != nil {
			return fmt.Errorf("session document without secretHash: %w", err)
		}
		return nil
	}
}

// rawList is the baseline of sessions: the look-ups storage.SessionsOfUser
// makes, straight through the driver: the user's list of session ids,
// then each session by _id, parallel as the store fetches them.
func rawList(db *mongo.Database, userID string, want int) op {
	lists, sessions := db.Collection("userSessions"), db.Collection(sessionsCollection)
	return func(ctx context.Context, w, i int) error {
		var list struct {
			IDs []string `bson:"ids"`
		}
		if err := lists.FindOne(ctx, bson.D{{Key: "_id", Value: userID}}).Decode(&list); err != nil {
			return fmt.Errorf("raw list: %w", err)
		}
		if len(list.IDs) != want {
			return fmt.Errorf("raw list: got %d ids, want %d", len(list.IDs), want)
		}
		errs := make(chan error, len(list.IDs))
		for _, id := range list.IDs {
			go func() {
				var doc bson.Raw
				errs <- sessions.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
			}()
		}
		var err error
		for range list.IDs {
			err = cmp.Or(err, <-errs)
		}
		return err
	}
}

// bcryptCompare is the baseline of login: one password check at the
// configured cost, the work no login can skip.
func bcryptCompare(hash []byte) op {
	pw := []byte(benchPassword)
	return func(ctx context.Context, w, i int) error {
		return bcrypt.CompareHashAndPassword(hash, pw)
	}
}

// dbOps counts database commands, from serverStatus.
type dbOps struct {
	reads   int64 // find, getMore, aggregate, count
	writes  int64 // insert, update, delete, findAndModify
	updates int64 // update alone: session touches
}

func (a dbOps) sub(b dbOps) dbOps {
	return dbOps{a.reads - b.reads, a.writes - b.writes, a.updates - b.updates}
}

// commandCounts reads the server's per-command counters
// (serverStatus metrics.commands.<name>.total: both FerretDB and MongoDB
// keep them). They count every client's commands, and the bench is the
// only client besides the server under test.
func commandCounts(ctx context.Context, client *mongo.Client) (dbOps, error) {
	var res struct {
		Metrics struct {
			Commands map[string]bson.Raw `bson:"commands"`
		} `bson:"metrics"`
	}
	err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "serverStatus", Value: 1}}).Decode(&res)
	if err != nil {
		return dbOps{}, fmt.Errorf("serverStatus: %w", err)
	}
	total := func(names ...string) int64 {
		var n int64
		for _, name := range names {
			if raw, ok := res.Metrics.Commands[name]; ok {
				if v, err := raw.LookupErr("total"); err == nil {
					x, _ := v.AsInt64OK()
					n += x
				}
			}
		}
		return n
	}
	return dbOps{
		reads:   total("find", "getMore", "aggregate", "count"),
		writes:  total("insert", "update", "delete", "findAndModify"),
		updates: total("update"),
	}, nil
}

// bcryptWaits reads the server's gatehouse_bcrypt_wait_seconds histogram:
// the seconds that password checks and hashes spent waiting for a bcrypt
// slot, and how many there were.
func (c *gqlClient) bcryptWaits(ctx context.Context) (seconds, count float64, err error) {
	v, err := c.metrics(ctx, "gatehouse_bcrypt_wait_seconds_sum", "gatehouse_bcrypt_wait_seconds_count")
	if err != nil {
		return 0, 0, err
	}
	return v[0], v[1], nil
}

// metrics reads the values of the named series (without labels) from the
// server's /metrics.
func (c *gqlClient) metrics(ctx context.Context, names ...string) ([]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: HTTP %d", res.StatusCode)
	}
	values, found := make([]float64, len(names)), 0
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), " ")
		i := slices.Index(names, name)
		if i < 0 {
			continue
		}
		if values[i], err = strconv.ParseFloat(value, 64); err != nil {
			return nil, fmt.Errorf("/metrics: %s: %w", name, err)
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if found != len(names) {
		return nil, fmt.Errorf("/metrics lacks some of %v", names)
	}
	return values, nil
}
