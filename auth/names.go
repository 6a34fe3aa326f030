package auth

import (
	"context"
	"strconv"
	"strings"

	"gatehouse/internal/confusables"
	"gatehouse/storage"
)

// ClaimExistingNames makes users created before look-alike names were
// refused claim their look-alike keys, so that no new name can look like
// theirs. It is meant for start-up, before any registration: the first
// start after an upgrade reads every user once; later starts read one
// marker document (storage.ClaimNamesOfUsers). Existing users whose names
// look alike all keep their names and sign in as before; each such pair is
// logged for the operator.
func (s *Service) ClaimExistingNames(ctx context.Context) error {
	return s.store.ClaimNamesOfUsers(ctx, lookalikeVersion,
		func(u *storage.User) []string { return lookalikeKeys(u.Name, u.Key) },
		func(u *storage.User, name, owner string) {
			s.log.WarnContext(ctx, "existing usernames look alike; both keep them",
				"user", u.ID, "name", strconv.QuoteToASCII(u.Name), "like", strconv.QuoteToASCII(owner))
		})
}

// lookalikeVersion names the way lookalikeKeys computes: a new Unicode
// table or a change below makes existing users claim their keys anew.
const lookalikeVersion = "Unicode " + confusables.Version + ", rule 1"

// lookalikeKeys returns the keys that a user with display name name and key
// key claims, so that no other user can have a name that looks like it:
// the look-alike form of the key and of the name. Both are needed because
// a skeleton depends on case: "I" looks like "l" but folds to "i", so
// "aIice" (key "aiice") looks like "alice" only as displayed, and the
// Cyrillic "аlice" looks like the key of a user displayed as "ALICE".
func lookalikeKeys(name, key string) []string {
	a, b := lookalike(key), lookalike(name)
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// lookalike is the confusable skeleton of s (Unicode TS #39), case-folded
// and skeletonised again, so that what looks alike in either case meets
// ("0" and "o" through "O"), with runs of spaces made one.
func lookalike(s string) string {
	s = confusables.Skeleton(foldKey(confusables.Skeleton(s)))
	return strings.Join(strings.Fields(s), " ")
}
