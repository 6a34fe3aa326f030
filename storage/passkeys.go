package storage

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Passkeys are kept like sessions: each a document keyed by a random
// opaque id, listed under its user ({_id: userId, ids: [...]} in
// userPasskeys), and found at sign-in through a keyed record of its
// credential id (passkeyCredentials) and of its user's handle
// (userHandles, the user's public id → the user's key). Every look-up is
// by _id. WebAuthn ceremonies in progress are documents of their own
// (passkeyChallenges), consumed by the one delete that succeeds.
const (
	passkeysCollection           = "passkeys"
	userPasskeysCollection       = "userPasskeys"
	passkeyCredentialsCollection = "passkeyCredentials"
	userHandlesCollection        = "userHandles"
	challengesCollection         = "passkeyChallenges"
)

// Passkey is a registered WebAuthn credential.
type Passkey struct {
	ID           string // opaque, random
	UserID       string
	CredentialID []byte
	// Credential is the library's credential as JSON (public key, sign
	// count, transports, AAGUID, flags): the auth package's to read.
	Credential []byte
	SignCount  uint32
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never
	// Epoch is the user's passkey epoch when it was registered; it is
	// valid while that is the user's epoch.
	Epoch string
}

type passkeyDoc struct {
	ID           string    `bson:"_id"`
	UserID       string    `bson:"userId"`
	CredentialID []byte    `bson:"credentialId"`
	Credential   []byte    `bson:"credential"`
	SignCount    int64     `bson:"signCount"`
	Name         string    `bson:"name"`
	CreatedAt    time.Time `bson:"createdAt"`
	LastUsedAt   time.Time `bson:"lastUsedAt,omitempty"`
	Epoch        string    `bson:"epoch,omitempty"`
}

func (d *passkeyDoc) passkey() *Passkey {
	return &Passkey{ID: d.ID, UserID: d.UserID, CredentialID: d.CredentialID, Credential: d.Credential,
		SignCount: uint32(d.SignCount), Name: d.Name, CreatedAt: d.CreatedAt, LastUsedAt: d.LastUsedAt, Epoch: d.Epoch}
}

type credentialDoc struct {
	ID        string `bson:"_id"` // the credential id, base64url
	PasskeyID string `bson:"passkeyId"`
	UserID    string `bson:"userId"`
}

// CreatePasskey stores p for its user, at most limit per user: it claims
// p's credential id (ErrDuplicate if any user has it), stores p, and lists
// it under the user; beyond limit it takes all of it back and returns
// ErrLimit. Of concurrent registrations, no more than limit stay.
func (s *Store) CreatePasskey(ctx context.Context, p *Passkey, limit int) error {
	credentialKey := CredentialKey(p.CredentialID)
	if err := claim(ctx, s.passkeyCredentials, credentialDoc{ID: credentialKey, PasskeyID: p.ID, UserID: p.UserID}); err != nil {
		return err
	}
	undo := func() { _, _ = s.passkeyCredentials.DeleteOne(context.WithoutCancel(ctx), byID(credentialKey)) }
	d := passkeyDoc{ID: p.ID, UserID: p.UserID, CredentialID: p.CredentialID, Credential: p.Credential,
		SignCount: int64(p.SignCount), Name: p.Name, CreatedAt: p.CreatedAt, Epoch: p.Epoch}
	if _, err := s.passkeys.InsertOne(ctx, d); err != nil {
		undo()
		return translate("create passkey", err)
	}
	var list userSessionsDoc // the same shape: {_id, ids}
	err := s.userPasskeys.FindOneAndUpdate(ctx, byID(p.UserID),
		bson.D{{Key: "$push", Value: bson.D{{Key: "ids", Value: p.ID}}}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After),
	).Decode(&list)
	if err == nil && slices.Index(list.IDs, p.ID) < limit {
		return nil
	}
	// Over the limit (counted in the order of listing), or not listed.
	_, derr := s.DeletePasskey(context.WithoutCancel(ctx), p.ID, p.UserID)
	undo()
	if err != nil {
		return errors.Join(translate("list passkey", err), derr)
	}
	return errors.Join(ErrLimit, derr)
}

// ErrLimit means a per-user limit is reached.
var ErrLimit = errors.New("storage: limit reached")

// PasskeysOfUser returns user userID's passkeys, newest first.
func (s *Store) PasskeysOfUser(ctx context.Context, userID string) ([]*Passkey, error) {
	var list userSessionsDoc
	err := s.userPasskeys.FindOne(ctx, byID(userID)).Decode(&list)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	} else if err != nil {
		return nil, translate("passkeys of user", err)
	}
	found := make([]*Passkey, len(list.IDs))
	err = each(len(list.IDs), func(i int) error {
		p, err := s.PasskeyByID(ctx, list.IDs[i])
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		found[i] = p
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []*Passkey
	for _, p := range slices.Backward(found) {
		if p != nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// PasskeyByID returns the passkey with id, or ErrNotFound.
func (s *Store) PasskeyByID(ctx context.Context, id string) (*Passkey, error) {
	var d passkeyDoc
	if err := s.passkeys.FindOne(ctx, byID(id)).Decode(&d); err != nil {
		return nil, translate("passkey by id", err)
	}
	return d.passkey(), nil
}

// PasskeyByCredential returns the passkey whose credential id is
// credentialKey (base64url), or ErrNotFound.
func (s *Store) PasskeyByCredential(ctx context.Context, credentialKey string) (*Passkey, error) {
	var c credentialDoc
	if err := s.passkeyCredentials.FindOne(ctx, byID(credentialKey)).Decode(&c); err != nil {
		return nil, translate("passkey by credential", err)
	}
	return s.PasskeyByID(ctx, c.PasskeyID)
}

// UsePasskey records a sign-in with passkey p, as read: its sign count
// becomes count and its credential credential, only if its sign count is
// still p's (ErrNotFound otherwise: another sign-in counted meanwhile).
func (s *Store) UsePasskey(ctx context.Context, p *Passkey, count uint32, credential []byte, at time.Time) error {
	res, err := s.passkeys.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: p.ID}, {Key: "signCount", Value: int64(p.SignCount)}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "signCount", Value: int64(count)}, {Key: "credential", Value: credential}, {Key: "lastUsedAt", Value: at},
		}}})
	if err != nil {
		return translate("use passkey", err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// RenamePasskey names passkey id of user userID, and returns it, or
// ErrNotFound if user userID has no such passkey.
func (s *Store) RenamePasskey(ctx context.Context, id, userID, name string) (*Passkey, error) {
	var d passkeyDoc
	err := s.passkeys.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}, {Key: "userId", Value: userID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: name}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if err != nil {
		return nil, translate("rename passkey", err)
	}
	return d.passkey(), nil
}

// DeletePasskey deletes passkey id of user userID (and its credential
// record) and reports whether it existed.
func (s *Store) DeletePasskey(ctx context.Context, id, userID string) (bool, error) {
	var d passkeyDoc
	err := s.passkeys.FindOneAndDelete(ctx, bson.D{{Key: "_id", Value: id}, {Key: "userId", Value: userID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	} else if err != nil {
		return false, translate("delete passkey", err)
	}
	if _, err := s.passkeyCredentials.DeleteOne(ctx, bson.D{{Key: "_id", Value: CredentialKey(d.CredentialID)}, {Key: "passkeyId", Value: id}}); err != nil {
		return true, translate("delete passkey credential", err)
	}
	if _, err := s.userPasskeys.UpdateOne(ctx, byID(userID), bson.D{{Key: "$pull", Value: bson.D{{Key: "ids", Value: id}}}}); err != nil {
		return true, translate("unlist passkey", err)
	}
	return true, nil
}

// CredentialKey is the key of a WebAuthn credential id in
// passkeyCredentials: its unpadded base64url, as WebAuthn's JSON writes it.
func CredentialKey(id []byte) string { return base64.RawURLEncoding.EncodeToString(id) }

// NewPasskeyEpoch voids every passkey of user key at once: it moves the
// user's passkey epoch to epoch. ErrNotFound for no such user.
func (s *Store) NewPasskeyEpoch(ctx context.Context, key, epoch string) error {
	return s.updateUser(ctx, "new passkey epoch", byID(key), bson.D{{Key: "$set", Value: bson.D{{Key: "passkeyEpoch", Value: epoch}}}})
}

// UserHandle records handle as user key's WebAuthn user handle (idempotent).
func (s *Store) UserHandle(ctx context.Context, handle, key string) error {
	err := claim(ctx, s.userHandles, bson.D{{Key: "_id", Value: handle}, {Key: "userKey", Value: key}})
	if errors.Is(err, ErrDuplicate) {
		return nil
	}
	return err
}

// UserByHandle returns the user whose WebAuthn user handle is handle, or
// ErrNotFound.
func (s *Store) UserByHandle(ctx context.Context, handle string) (*User, error) {
	var d struct {
		Key string `bson:"userKey"`
	}
	if err := s.userHandles.FindOne(ctx, byID(handle)).Decode(&d); err != nil {
		return nil, translate("user by handle", err)
	}
	return s.UserByKey(ctx, d.Key)
}

// Challenge is a WebAuthn ceremony in progress.
type Challenge struct {
	ID        string
	Kind      string // "registration" or "login"
	SessionID string // registration: the session that began it
	Data      []byte // the library's session data, as JSON
	ExpiresAt time.Time
}

type challengeDoc struct {
	ID        string    `bson:"_id"`
	Kind      string    `bson:"kind"`
	SessionID string    `bson:"sessionId,omitempty"`
	Data      []byte    `bson:"data"`
	ExpiresAt time.Time `bson:"expiresAt"`
}

// CreateChallenge stores c.
func (s *Store) CreateChallenge(ctx context.Context, c *Challenge) error {
	return claim(ctx, s.challenges, challengeDoc(*c))
}

// TakeChallenge consumes challenge id of kind, begun by session sessionID
// ("" for none), and returns it: of concurrent takers one gets it, the
// others ErrNotFound, as for an unknown id or one of another kind or
// session (which it leaves alone).
func (s *Store) TakeChallenge(ctx context.Context, id, kind, sessionID string) (*Challenge, error) {
	var d challengeDoc
	if err := s.challenges.FindOne(ctx, byID(id)).Decode(&d); err != nil {
		return nil, translate("challenge", err)
	}
	if d.Kind != kind || d.SessionID != sessionID {
		return nil, ErrNotFound
	}
	res, err := s.challenges.DeleteOne(ctx, byID(id))
	if err != nil {
		return nil, translate("take challenge", err)
	}
	if res.DeletedCount != 1 {
		return nil, ErrNotFound // another request took it
	}
	c := Challenge(d)
	return &c, nil
}

// DeleteExpiredChallenges deletes the challenges that expired before now.
func (s *Store) DeleteExpiredChallenges(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.challenges.DeleteMany(ctx, bson.D{{Key: "expiresAt", Value: bson.D{{Key: "$lt", Value: now}}}})
	if err != nil {
		return 0, translate("delete expired challenges", err)
	}
	return res.DeletedCount, nil
}
