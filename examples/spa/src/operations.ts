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
