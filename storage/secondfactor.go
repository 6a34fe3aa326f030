package storage

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A second factor's single-use rules are claims: a code is used by the one
// request whose insert of its claim, keyed by _id, succeeds. MongoDB and
// the embedded engine both refuse a second insert of an _id, whatever the
// timing, so two requests carrying one code can never both pass.
//
// Claims of TOTP time steps ({_id: "<totp id>:<step>", expiresAt}) are
// only needed while their step can still be presented; the sweeper
// deletes them after. The same collection holds the short-lived locks of
// pending sessions being verified ("verifying:<session id>"). Claims of recovery codes ({_id: <code hash>}) live
// as long as the codes they use up, and go with them.
const (
	stepClaimsCollection     = "totpSteps"
	recoveryClaimsCollection = "usedRecoveryCodes"
)

type stepClaimDoc struct {
	ID        string    `bson:"_id"`
	ExpiresAt time.Time `bson:"expiresAt"`
}

// ClaimStep claims TOTP step id (which names the secret and the step) until
// expires: ErrDuplicate if it was claimed before.
func (s *Store) ClaimStep(ctx context.Context, id string, expires time.Time) error {
	return claim(ctx, s.stepClaims, stepClaimDoc{ID: id, ExpiresAt: expires})
}

// ClaimLock claims id until expires, as ClaimStep does, except that a claim
// of id that expired before now (its holder stopped without releasing it)
// is taken over: ErrDuplicate only while another holder's claim runs.
func (s *Store) ClaimLock(ctx context.Context, id string, expires, now time.Time) error {
	err := s.ClaimStep(ctx, id, expires)
	if !errors.Is(err, ErrDuplicate) {
		return err
	}
	var d stepClaimDoc
	if err := s.stepClaims.FindOne(ctx, byID(id)).Decode(&d); errors.Is(err, mongo.ErrNoDocuments) {
		return s.ClaimStep(ctx, id, expires) // released meanwhile
	} else if err != nil {
		return translate("read lock", err)
	} else if !d.ExpiresAt.Before(now) {
		return ErrDuplicate
	}
	// Expired: delete exactly that claim (of racing takers, one deletes
	// it), then claim as anyone may.
	if _, err := s.stepClaims.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "expiresAt", Value: d.ExpiresAt}}); err != nil {
		return translate("take over lock", err)
	}
	return s.ClaimStep(ctx, id, expires)
}

// UnclaimStep deletes the claim id (a claim used as a lock).
func (s *Store) UnclaimStep(ctx context.Context, id string) error {
	if _, err := s.stepClaims.DeleteOne(ctx, byID(id)); err != nil {
		return translate("unclaim step", err)
	}
	return nil
}

// StepClaimed reports whether TOTP step id is claimed.
func (s *Store) StepClaimed(ctx context.Context, id string) (bool, error) {
	return exists(ctx, s.stepClaims, "step claimed", id)
}

// ClaimRecoveryCode uses up the recovery code with hash: ErrDuplicate if it
// was used before.
func (s *Store) ClaimRecoveryCode(ctx context.Context, hash string) error {
	return claim(ctx, s.recoveryClaims, byID(hash))
}

// RecoveryCodesUsed returns how many of the recovery codes with hashes
// are used up.
func (s *Store) RecoveryCodesUsed(ctx context.Context, hashes []string) (int, error) {
	used := make([]bool, len(hashes))
	err := each(len(hashes), func(i int) error {
		var err error
		used[i], err = exists(ctx, s.recoveryClaims, "recovery code used", hashes[i])
		return err
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range used {
		if u {
			n++
		}
	}
	return n, nil
}

// ForgetRecoveryCodes deletes the claims of the recovery codes with hashes
// (codes that have been replaced).
func (s *Store) ForgetRecoveryCodes(ctx context.Context, hashes []string) error {
	return each(len(hashes), func(i int) error {
		if _, err := s.recoveryClaims.DeleteOne(ctx, byID(hashes[i])); err != nil {
			return translate("forget recovery code", err)
		}
		return nil
	})
}

// DeleteExpiredClaims deletes the claims of TOTP steps that expired
// before now and returns how many.
func (s *Store) DeleteExpiredClaims(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.stepClaims.DeleteMany(ctx, bson.D{{Key: "expiresAt", Value: bson.D{{Key: "$lt", Value: now}}}})
	if err != nil {
		return 0, translate("delete expired claims", err)
	}
	return res.DeletedCount, nil
}

// exists reports whether c holds a document with _id id.
func exists(ctx context.Context, c *mongo.Collection, what, id string) (bool, error) {
	err := c.FindOne(ctx, byID(id)).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	} else if err != nil {
		return false, translate(what, err)
	}
	return true, nil
}

func claim(ctx context.Context, c *mongo.Collection, d any) error {
	_, err := c.InsertOne(ctx, d)
	if mongo.IsDuplicateKeyError(err) {
		return ErrDuplicate
	} else if err != nil {
		return translate("claim", err)
	}
	return nil
}

// keyCheckID is the meta document that holds the fingerprint of the key
// the second-factor secrets are sealed with.
const keyCheckID = "totpKey"

// KeyFingerprint records fingerprint as the sealing key's if none is
// recorded, and returns the one recorded (fingerprint itself the first
// time; of instances starting together with different keys, one records).
func (s *Store) KeyFingerprint(ctx context.Context, fingerprint string) (string, error) {
	_, err := s.meta.InsertOne(ctx, bson.D{{Key: "_id", Value: keyCheckID}, {Key: "fingerprint", Value: fingerprint}})
	if err == nil {
		return fingerprint, nil
	} else if !mongo.IsDuplicateKeyError(err) {
		return "", translate("record key fingerprint", err)
	}
	var d struct {
		Fingerprint string `bson:"fingerprint"`
	}
	if err := s.meta.FindOne(ctx, byID(keyCheckID)).Decode(&d); err != nil {
		return "", translate("read key fingerprint", err)
	}
	return d.Fingerprint, nil
}

// RecordedKeyFingerprint returns the fingerprint recorded by
// KeyFingerprint, or "" if there is none yet.
func (s *Store) RecordedKeyFingerprint(ctx context.Context) (string, error) {
	var d struct {
		Fingerprint string `bson:"fingerprint"`
	}
	err := s.meta.FindOne(ctx, byID(keyCheckID)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", nil
	} else if err != nil {
		return "", translate("read key fingerprint", err)
	}
	return d.Fingerprint, nil
}

// SetKeyFingerprint records fingerprint as the sealing key's, whatever was
// recorded: for after every secret sealed with the old key is gone.
func (s *Store) SetKeyFingerprint(ctx context.Context, fingerprint string) error {
	_, err := s.meta.UpdateOne(ctx, byID(keyCheckID), bson.D{{Key: "$set", Value: bson.D{{Key: "fingerprint", Value: fingerprint}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return translate("set key fingerprint", err)
	}
	return nil
}

// UsersWithTOTP returns the keys of the users with a second factor or an
// enrollment. It reads every user: for the administrator's reset of all
// of them, never a request.
func (s *Store) UsersWithTOTP(ctx context.Context) ([]string, error) {
	cur, err := s.users.Find(ctx, bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "totpId", Value: bson.D{{Key: "$exists", Value: true}}}},
		bson.D{{Key: "totpPendingId", Value: bson.D{{Key: "$exists", Value: true}}}},
	}}}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, translate("users with totp", err)
	}
	var docs []struct {
		Key string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate("users with totp", err)
	}
	keys := make([]string, len(docs))
	for i, d := range docs {
		keys[i] = d.Key
	}
	return keys, nil
}

// The second factor's state lives in the user's document, and each change
// of it is one atomic update conditional on the state it starts from, so
// that of two racing changes one wins and the other finds ErrNotFound.

// BeginTOTP records enrollment id, with its sealed secret, for user key,
// replacing any enrollment not yet confirmed. ErrNotFound if there is no
// such user or it has a second factor enabled.
func (s *Store) BeginTOTP(ctx context.Context, key, id string, sealed []byte) error {
	return s.updateUser(ctx, "begin totp", bson.D{{Key: "_id", Value: key}, noTOTP},
		bson.D{{Key: "$set", Value: bson.D{{Key: "totpPendingId", Value: id}, {Key: "totpPendingSecret", Value: sealed}}}})
}

// EnableTOTP turns enrollment id of user key, whose sealed secret is
// sealed, into the user's second factor with recovery codes hashes, and
// gives the user a new credential id (as a password change does).
// ErrNotFound unless that enrollment is still the user's pending one.
func (s *Store) EnableTOTP(ctx context.Context, key, id string, sealed []byte, hashes []string, credentialID string) error {
	return s.updateUser(ctx, "enable totp",
		bson.D{{Key: "_id", Value: key}, {Key: "totpPendingId", Value: id}, noTOTP},
		bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "totpId", Value: id}, {Key: "totpSecret", Value: sealed},
				{Key: "recoveryCodes", Value: hashes}, {Key: "credentialId", Value: credentialID},
			}},
			{Key: "$unset", Value: bson.D{{Key: "totpPendingId", Value: ""}, {Key: "totpPendingSecret", Value: ""}}},
		})
}

// SetRecoveryCodes replaces the recovery codes old of user key's second
// factor id by hashes. ErrNotFound unless id is still its second factor
// and old its codes: of two requests replacing the same codes, one wins.
func (s *Store) SetRecoveryCodes(ctx context.Context, key, id string, old, hashes []string) error {
	return s.updateUser(ctx, "set recovery codes",
		bson.D{{Key: "_id", Value: key}, {Key: "totpId", Value: id}, {Key: "recoveryCodes", Value: old}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "recoveryCodes", Value: hashes}}}})
}

// DisableTOTP removes second factor id of user key (and any enrollment),
// and gives the user a new credential id. With id empty it removes
// whatever second factor the user has. ErrNotFound unless id is still the
// user's second factor.
func (s *Store) DisableTOTP(ctx context.Context, key, id, credentialID string) error {
	filter := bson.D{{Key: "_id", Value: key}}
	if id != "" {
		filter = append(filter, bson.E{Key: "totpId", Value: id})
	}
	return s.updateUser(ctx, "disable totp", filter, bson.D{
		{Key: "$set", Value: bson.D{{Key: "credentialId", Value: credentialID}}},
		{Key: "$unset", Value: bson.D{
			{Key: "totpId", Value: ""}, {Key: "totpSecret", Value: ""}, {Key: "recoveryCodes", Value: ""},
			{Key: "totpPendingId", Value: ""}, {Key: "totpPendingSecret", Value: ""},
		}},
	})
}

// noTOTP matches a user without a second factor.
var noTOTP = bson.E{Key: "totpId", Value: bson.D{{Key: "$exists", Value: false}}}

func (s *Store) updateUser(ctx context.Context, what string, filter, update bson.D) error {
	res, err := s.users.UpdateOne(ctx, filter, update)
	if err != nil {
		return translate(what, err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// CompleteSecondFactor turns pending session sess, as read, into a full
// one: its secret hash becomes secretHash (the old token stops working),
// its factors factors, and it was last seen at seen and expires at
// expires. It happens only while sess is still pending with the secret it
// had: ErrNotFound if it ended, or another request completed it first.
func (s *Store) CompleteSecondFactor(ctx context.Context, sess *Session, secretHash []byte, factors []string, seen, expires time.Time) error {
	ctx = writeContext(ctx)
	res, err := s.sessions.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: sess.ID}, {Key: "secretHash", Value: sess.SecretHash}, {Key: "pending", Value: true}},
		bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "secretHash", Value: secretHash}, {Key: "factors", Value: factors},
				{Key: "lastSeenAt", Value: seen}, {Key: "expiresAt", Value: expires}, {Key: "authAt", Value: seen},
			}},
			{Key: "$unset", Value: bson.D{{Key: "pending", Value: ""}}},
		})
	s.cache.wrote(sess.ID, err != nil)
	if err != nil {
		return translate("complete second factor", err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	done := *sess
	done.LastSeenAt, done.ExpiresAt = seen, expires
	return s.fileExpiry(ctx, &done)
}
