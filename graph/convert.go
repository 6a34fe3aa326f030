package graph

import (
	"encoding/base64"
	"time"

	"gatehouse/auth"
	"gatehouse/graph/model"
	"gatehouse/storage"
)

// The conversions below are the only place storage types become GraphQL
// types, so hashes and internal keys cannot reach a response by accident.

func userOf(s *storage.Session) *model.User {
	return &model.User{ID: s.UserID, Username: s.UserName, CreatedAt: utc(s.UserCreatedAt), Key: s.UserKey}
}

// sessionOf converts s; callerID marks the session that made the request.
func (r *Resolver) sessionOf(s *storage.Session, callerID string) *model.Session {
	return &model.Session{
		ID:         s.ID,
		User:       userOf(s),
		Data:       model.JSONObject(s.Data),
		CreatedAt:  utc(s.CreatedAt),
		LastSeenAt: utc(s.LastSeenAt),
		ExpiresAt:  utc(r.auth.ExpiresAt(s)),
		Current:    s.ID == callerID,
		UserAgent:  optional(s.UserAgent),
		IPAddress:  optional(s.IP),

		Factors:             factorsOf(s),
		SecondFactorPending: s.Pending,
	}
}

func factorsOf(s *storage.Session) []model.AuthFactor {
	var out []model.AuthFactor
	for _, f := range auth.Factors(s) {
		out = append(out, model.AuthFactor(f))
	}
	return out
}

func (r *Resolver) payloadOf(s *storage.Session, tok auth.Token) *model.AuthPayload {
	return &model.AuthPayload{Token: tok.String(), Session: r.sessionOf(s, s.ID), SecondFactorRequired: s.Pending}
}

func utc(t time.Time) time.Time { return t.UTC() }

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func passkeyOf(p *storage.Passkey) *model.Passkey {
	out := &model.Passkey{ID: p.ID, Name: p.Name, CreatedAt: utc(p.CreatedAt)}
	if !p.LastUsedAt.IsZero() {
		t := utc(p.LastUsedAt)
		out.LastUsedAt = &t
	}
	return out
}

func challengeOf(c *auth.PasskeyChallenge) *model.PasskeyChallenge {
	return &model.PasskeyChallenge{ChallengeID: c.ID, Options: model.JSONObject(c.Options)}
}

func eventsOf(p *auth.EventPage) *model.SecurityEventConnection {
	out := &model.SecurityEventConnection{Edges: []*model.SecurityEventEdge{}, PageInfo: &model.PageInfo{HasNextPage: p.More}}
	for _, e := range p.Events {
		cursor := auth.EventCursor(e)
		out.Edges = append(out.Edges, &model.SecurityEventEdge{Cursor: cursor, Node: &model.SecurityEvent{
			ID:        base64.RawURLEncoding.EncodeToString([]byte(e.ID)),
			Type:      model.SecurityEventType(e.Type),
			At:        utc(e.At),
			SessionID: optional(e.SessionID),
			IPAddress: optional(e.IP),
			UserAgent: optional(e.UserAgent),
		}})
		out.PageInfo.EndCursor = &cursor
	}
	return out
}
