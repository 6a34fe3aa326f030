package storage

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// User is an account.
type User struct {
	// Key is the normalised username; unique, and the document's _id.
	Key string
	// ID is the public, random, never-changing identifier.
	ID string
	// Name is the username as the user chose it (trimmed and normalised,
	// case kept).
	Name         string
	PasswordHash string
	// CredentialID changes with every password change (not with a rehash
	// of the same password), so that a check against an older password
	// can tell it is stale. Empty for accounts created before it existed.
	CredentialID string
	CreatedAt    time.Time

	// The second factor (see secondfactor.go). TOTPID names the enabled
	// TOTP secret (empty: none) and TOTPSecret is that secret, sealed by
	// the auth package (this package never sees it in the clear).
	TOTPID     string
	TOTPSecret []byte
	// An enrollment begun and not yet confirmed: its id and sealed secret.
	TOTPPendingID     string
	TOTPPendingSecret []byte
	// RecoveryCodes are the keyed hashes of the recovery codes of the
	// enabled second factor; which are used up is told by claims.
	RecoveryCodes []string

	// PasskeyEpoch is the epoch of the user's valid passkeys (passkeys.go):
	// a reset moves it, and every passkey of an earlier epoch is void.
	PasskeyEpoch string
}

type userDoc struct {
	Key          string    `bson:"_id"`
	ID           string    `bson:"uid"`
	Name         string    `bson:"name"`
	PasswordHash string    `bson:"passwordHash"`
	CredentialID string    `bson:"credentialId,omitempty"`
	CreatedAt    time.Time `bson:"createdAt"`

	TOTPID            string   `bson:"totpId,omitempty"`
	TOTPSecret        []byte   `bson:"totpSecret,omitempty"`
	TOTPPendingID     string   `bson:"totpPendingId,omitempty"`
	TOTPPendingSecret []byte   `bson:"totpPendingSecret,omitempty"`
	RecoveryCodes     []string `bson:"recoveryCodes,omitempty"`
	PasskeyEpoch      string   `bson:"passkeyEpoch,omitempty"`
}

// CreateUser inserts u after claiming its look-alike keys, names, for
// u.Key (see names.go). It returns ErrDuplicate when u.Key is taken
// or another user owns one of names; the database decides, so of two
// concurrent registrations of one name, or of look-alike names, only one
// succeeds.
func (s *Store) CreateUser(ctx context.Context, u *User, names ...string) error {
	if err := s.claimNames(ctx, u.Key, names); err != nil {
		return err
	}
	_, err := s.users.InsertOne(ctx, userDoc(*u))
	if mongo.IsDuplicateKeyError(err) {
		return ErrDuplicate
	} else if err != nil {
		return translate("create user", err)
	}
	return nil
}

// UserByKey returns the user with normalised name key, or ErrNotFound.
func (s *Store) UserByKey(ctx context.Context, key string) (*User, error) {
	var d userDoc
	err := s.users.FindOne(ctx, byID(key)).Decode(&d)
	if err != nil {
		return nil, translate("user by key", err)
	}
	u := User(d)
	return &u, nil
}

// SetPassword replaces the password hash of the user with key and gives it
// a new credential id, in one atomic write, or returns ErrNotFound.
func (s *Store) SetPassword(ctx context.Context, key, hash, credentialID string) error {
	res, err := s.users.UpdateOne(ctx, byID(key), bson.D{{Key: "$set", Value: bson.D{
		{Key: "passwordHash", Value: hash}, {Key: "credentialId", Value: credentialID},
	}}})
	if err != nil {
		return translate("set password", err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// CountUsers returns the number of users.
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	n, err := s.users.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, translate("count users", err)
	}
	return n, nil
}

// ReplaceHash replaces the password hash of the user with key by hash if
// it is still old, and reports whether it did: a rehash of the same
// password never undoes a password change that landed meanwhile.
func (s *Store) ReplaceHash(ctx context.Context, key, old, hash string) (bool, error) {
	res, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "passwordHash", Value: old}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "passwordHash", Value: hash}}}})
	if err != nil {
		return false, translate("replace hash", err)
	}
	return res.ModifiedCount == 1, nil
}
