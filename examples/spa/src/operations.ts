// Every operation the app sends. `npm run codegen` reads these, with the
// live schema, and generates their types into ./gql.
import { graphql } from './gql';

export const MeQuery = graphql(`
  query Me {
    me {
      id
      username
      createdAt
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
