package auth

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
	"time"

	"gatehouse/storage"
)

// Security event types, as the schema's SecurityEventType names them.
const (
	EventSignedIn             = "SIGNED_IN"
	EventSignedOut            = "SIGNED_OUT"
	EventLoginFailed          = "LOGIN_FAILED"
	EventThrottled            = "THROTTLED"
	EventSessionRevoked       = "SESSION_REVOKED"
	EventOtherSessionsRevoked = "OTHER_SESSIONS_REVOKED"
	EventSessionExpired       = "SESSION_EXPIRED"
	EventPasswordChanged      = "PASSWORD_CHANGED"
	EventSecondFactorEnabled  = "SECOND_FACTOR_ENABLED"
	EventSecondFactorDisabled = "SECOND_FACTOR_DISABLED"
	EventPasskeyAdded         = "PASSKEY_ADDED"
	EventPasskeyRemoved       = "PASSKEY_REMOVED"
	// NoticeDataUpdated is pushed to the session's subscribers, not logged.
	NoticeDataUpdated = "DATA_UPDATED"
)

// Defaults of the event log.
const (
	// DefaultEventsRetention is how long events are kept when
	// Config.EventsRetention is zero.
	DefaultEventsRetention = 90 * 24 * time.Hour
	// failureEventsPerDay bounds the LOGIN_FAILED and THROTTLED events of
	// one user and day, so that a guessing flood cannot grow the log
	// without limit.
	failureEventsPerDay = 50
)

// record writes an event of user userID to its log and, unless it is a
// failure, to the live stream, with the address and user agent of the
// request in ctx (none for the admin CLI and the sweeper, which have no
// request). A failed write is logged: the action it records has happened,
// and the caller's answer must say so.
func (s *Service) record(ctx context.Context, typ, userID, sessionID string) {
	s.recordAt(ctx, s.now(), typ, userID, sessionID)
}

// unknownOwner prefixes the name of a user that does not exist, as the
// owner of the failure events a login under that name records: a log no
// one reads, kept a throttle window, written only so that a failure costs
// the same whether the name exists or not. A user's id never contains ':'.
const unknownOwner = "unknown:"

// recordAt is record of an event that happened at at.
func (s *Service) recordAt(ctx context.Context, at time.Time, typ, userID, sessionID string) {
	c := ClientFrom(ctx)
	ctx = context.WithoutCancel(ctx)
	e := &storage.Event{UserID: userID, Type: typ, At: at, SessionID: sessionID, IP: c.IP, UserAgent: c.UserAgent}
	retention := s.cfg.EventsRetention
	if strings.HasPrefix(userID, unknownOwner) {
		e.Disposable, retention = true, s.cfg.Throttle.Window
	}
	if err := s.store.AppendEvent(ctx, e, retention); err != nil {
		s.log.WarnContext(ctx, "record security event failed", "user", userID, "type", typ, "err", err)
	}
	if typ != EventLoginFailed && typ != EventThrottled { // failures are not news to a session
		s.notify(typ, userID, sessionID)
	}
}

// recordFailure records a LOGIN_FAILED or THROTTLED event of userID, up to
// failureEventsPerDay a day.
func (s *Service) recordFailure(ctx context.Context, typ, userID, sessionID string) {
	ok, err := s.store.CountFailureEvent(context.WithoutCancel(ctx), userID, s.now().Format(time.DateOnly), failureEventsPerDay)
	if err != nil {
		s.log.WarnContext(ctx, "count failure event failed", "user", userID, "err", err)
	}
	if ok {
		s.record(ctx, typ, userID, sessionID)
	}
}

// background runs f apart from the request in ctx (whose values it keeps)
// and returns at once; Wait waits for every such f.
func (s *Service) background(ctx context.Context, f func(context.Context)) {
	s.pending.Go(func() { f(context.WithoutCancel(ctx)) })
}

// Wait waits for the work that requests left to run after their answers
// (failure events, notices for the live stream): a server calls it once
// it has stopped serving.
func (s *Service) Wait() { s.pending.Wait() }

// dataNoticeGap is how long a session's data updates gather into one
// DATA_UPDATED notice: a client looping updateSessionData publishes at
// most one notice per session per gap, the last update always told.
const dataNoticeGap = 100 * time.Millisecond

// dataNotices are the sessions whose DATA_UPDATED notice is due.
type dataNotices struct {
	mu  sync.Mutex
	due map[string]bool
}

// notifyData tells the subscribers of sessionID that its data changed,
// dataNoticeGap from now, in one notice for every update until then.
func (s *Service) notifyData(ctx context.Context, userID, sessionID string) {
	s.data.mu.Lock()
	defer s.data.mu.Unlock()
	if s.data.due[sessionID] {
		return // the notice already due tells of this update too
	}
	if s.data.due == nil {
		s.data.due = map[string]bool{}
	}
	s.data.due[sessionID] = true
	s.background(ctx, func(ctx context.Context) {
		time.Sleep(dataNoticeGap)
		s.data.mu.Lock()
		delete(s.data.due, sessionID) // updates from now on get a notice of their own
		s.data.mu.Unlock()
		s.notify(NoticeDataUpdated, userID, sessionID)
	})
}

// EventPage is one page of a user's security events, newest first.
type EventPage struct {
	Events []*storage.Event
	// More tells whether older events remain after the last one.
	More bool
}

// Event page sizes.
const (
	DefaultEventPage = 20
	MaxEventPage     = 100
)

// SecurityEvents returns the caller's security events, newest first: first
// of them (1 to MaxEventPage) after the event that cursor names ("" for
// the newest).
func (s *Service) SecurityEvents(ctx context.Context, caller *storage.Session, first int, after string) (*EventPage, error) {
	if first < 1 || first > MaxEventPage {
		return nil, &InputError{Field: "first", Reason: "must be 1 to " + strconv.Itoa(MaxEventPage)}
	}
	before := int64(0)
	if after != "" {
		n, ok := parseCursor(after)
		if !ok {
			return nil, &InputError{Field: "after", Reason: "is not a cursor of securityEvents"}
		}
		before = n
	}
	events, more, err := s.store.EventsOfUser(ctx, caller.UserID, before, first)
	if err != nil {
		return nil, err
	}
	return &EventPage{Events: events, More: more}, nil
}

// EventCursor is the opaque cursor of e: its number in its user's log.
func EventCursor(e *storage.Event) string {
	return base64.RawURLEncoding.EncodeToString([]byte("event:" + strconv.FormatInt(e.N, 10)))
}

func parseCursor(c string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	digits, ok := strings.CutPrefix(string(b), "event:")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != digits {
		return 0, false
	}
	return n, true
}

// SweepEvents deletes the events past their retention.
func (s *Service) SweepEvents(ctx context.Context) (int64, error) {
	n, err := s.store.DeleteExpiredEvents(ctx, s.now())
	if _, terr := s.store.TrimNotices(ctx, noticeAge); err == nil {
		err = terr
	}
	return n, err
}

// noticeAge is how long the live stream keeps notices: subscribers read
// them within a second, and a reader stalled longer re-checks everything.
const noticeAge = 2 * time.Minute
