package ui

import (
	"net/http"
)

// loginView is the login form's state.
type loginView struct {
	User  string
	Error string // catalog key
	Next  string // where to go after login
}

// loginPage shows the login form (GET /login); a logged-in user goes to
// the dashboard instead.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	ri := infoFrom(r.Context())
	if s.authenticate(w, r, ri) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.preSessionToken(w, r, ri)
	s.render(w, r, http.StatusOK, loginPage(loginView{Next: localPath(r.URL.Query().Get("next"))}))
}

// login checks a user name and password (POST /login).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ri := infoFrom(ctx)
	user := r.PostFormValue("user")
	password := r.PostFormValue("password")
	v := loginView{User: user, Next: localPath(r.PostFormValue("next"))}
	if len(user) > MaxUserNameLen || len(password) > MaxPasswordLen {
		// Longer values were never stored: no need to hash them.
		v.Error = "login.wrong"
		s.preSessionToken(w, r, ri)
		s.render(w, r, http.StatusUnauthorized, loginPage(v))
		return
	}
	res, err := s.checkLogin(ctx, r.RemoteAddr, user, password)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	switch res {
	case loginOK:
		if err := s.startSession(w, r, user); err != nil {
			s.serverError(w, r, err)
			return
		}
		s.log.Info("console: login", "user", user, "addr", r.RemoteAddr)
		http.Redirect(w, r, v.Next, http.StatusSeeOther)
		return
	case loginLimited:
		s.log.Warn("console: login refused: too many failures", "user", user, "addr", r.RemoteAddr)
		v.Error = "login.limited"
		s.preSessionToken(w, r, ri)
		s.render(w, r, http.StatusTooManyRequests, loginPage(v))
	default:
		s.log.Warn("console: wrong user name or password", "user", user, "addr", r.RemoteAddr)
		v.Error = "login.wrong"
		s.preSessionToken(w, r, ri)
		s.render(w, r, http.StatusUnauthorized, loginPage(v))
	}
}

// logout ends the session (POST /logout).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(s.cookieName(r, sessionCookie)); err == nil {
		if err := s.store.DeleteSession(r.Context(), sessionID(c.Value)); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	s.clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
