// Every operation the app sends. `npm run codegen` reads these, with the
// live schema, and generates their types into ./gql.
import { graphql } from './gql';

// Who is signed in. me is null for a visitor and for a session that waits
// for its second factor; session (which such a session may still read)
// tells the two apart.
export const MeQuery = graphql(`
  query Me {
    me {
      id
      username
      createdAt
      totpEnabled
      recoveryCodesLeft
    }
    session {
      id
      secondFactorPending
    }
  }
`);

export const SessionsQuery = graphql(`
  query Sessions {
    session {
      id
      data
    }
    sessions {
      id
      current
      factors
      createdAt
      lastSeenAt
      expiresAt
      userAgent
      ipAddress
    }
  }
`);

// Neither sign-in mutation asks for the token: the browser keeps the
// HttpOnly session cookie, and the app never sees a credential.
export const SignUpMutation = graphql(`
  mutation SignUp($username: String!, $password: String!) {
    register(username: $username, password: $password) {
      session {
        id
      }
    }
  }
`);

export const LogInMutation = graphql(`
  mutation LogIn($username: String!, $password: String!) {
    login(username: $username, password: $password) {
      session {
        id
      }
      secondFactorRequired
    }
  }
`);

// The second step of signing in to an account with two-factor on. The
// answer sets a new session cookie: the pending session's stops working.
export const VerifySecondFactorMutation = graphql(`
  mutation VerifySecondFactor($code: String!) {
    verifySecondFactor(code: $code) {
      session {
        id
      }
    }
  }
`);

export const RevokeSessionMutation = graphql(`
  mutation RevokeSession($id: ID!) {
    deleteSession(id: $id)
  }
`);

export const LogOutOthersMutation = graphql(`
  mutation LogOutOthers {
    deleteOtherSessions
  }
`);

export const SaveSessionDataMutation = graphql(`
  mutation SaveSessionData($data: JSONObject!) {
    updateSessionData(data: $data) {
      id
      data
    }
  }
`);

export const LogOutMutation = graphql(`
  mutation LogOut {
    deleteSession
  }
`);

export const BeginTotpEnrollmentMutation = graphql(`
  mutation BeginTotpEnrollment($password: String!) {
    beginTotpEnrollment(password: $password) {
      secret
      uri
      qrCodeSvg
    }
  }
`);

export const ConfirmTotpEnrollmentMutation = graphql(`
  mutation ConfirmTotpEnrollment($code: String!) {
    confirmTotpEnrollment(code: $code)
  }
`);

export const DisableTotpMutation = graphql(`
  mutation DisableTotp($password: String!, $code: String!) {
    disableTotp(password: $password, code: $code)
  }
`);

export const RegenerateRecoveryCodesMutation = graphql(`
  mutation RegenerateRecoveryCodes($password: String!, $code: String!) {
    regenerateRecoveryCodes(password: $password, code: $code)
  }
`);

// Passkeys (WebAuthn). Each ceremony is begin, the browser, finish: begin
// returns a challengeId and the options for navigator.credentials, as
// JSON; finish takes the browser's PublicKeyCredential.toJSON().
export const PasskeysQuery = graphql(`
  query Passkeys {
    passkeys {
      id
      name
      createdAt
      lastUsedAt
    }
  }
`);

export const BeginPasskeyRegistrationMutation = graphql(`
  mutation BeginPasskeyRegistration {
    beginPasskeyRegistration {
      challengeId
      options
    }
  }
`);

export const FinishPasskeyRegistrationMutation = graphql(`
  mutation FinishPasskeyRegistration($challengeId: ID!, $credential: JSONObject!, $name: String) {
    finishPasskeyRegistration(challengeId: $challengeId, credential: $credential, name: $name) {
      id
      name
    }
  }
`);

export const RenamePasskeyMutation = graphql(`
  mutation RenamePasskey($id: ID!, $name: String!) {
    renamePasskey(id: $id, name: $name) {
      id
      name
    }
  }
`);

export const DeletePasskeyMutation = graphql(`
  mutation DeletePasskey($id: ID!) {
    deletePasskey(id: $id)
  }
`);

// Signing in with a passkey needs no username: the browser offers the
// passkeys it holds for this site (discoverable credentials). Like LogIn,
// the answer sets the session cookie and the app never asks for the token.
export const BeginPasskeyLoginMutation = graphql(`
  mutation BeginPasskeyLogin {
    beginPasskeyLogin {
      challengeId
      options
    }
  }
`);

export const FinishPasskeyLoginMutation = graphql(`
  mutation FinishPasskeyLogin($challengeId: ID!, $credential: JSONObject!) {
    finishPasskeyLogin(challengeId: $challengeId, credential: $credential) {
      session {
        id
      }
    }
  }
`);

// Live events of this session and its user, over the WebSocket (see
// apollo.ts). REVOKED, EXPIRED and PASSWORD_CHANGED end the session: the
// server then completes the subscription and closes the socket.
export const SessionEventsSubscription = graphql(`
  subscription SessionEvents {
    sessionEvents {
      type
      at
      sessionId
    }
  }
`);

// The account's security log, newest first; "Load more" passes the last
// page's endCursor as after.
export const ActivityQuery = graphql(`
  query Activity($first: Int, $after: String) {
    session {
      id
    }
    securityEvents(first: $first, after: $after) {
      edges {
        cursor
        node {
          id
          type
          at
          sessionId
          ipAddress
          userAgent
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);
