package plan

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dbusers/dbusers/bot/internal/mysqlstate"
)

// wireChange is a Change as JSON carries it: one flat object with the
// action and whichever fields its kind has, the shape that reports, the
// Lambda's responses and `reconcile --format json` have always printed.
// It exists only at this boundary; inside the process a Change holds a
// typed Op.
type wireChange struct {
	Action     Action                `json:"action"`
	Account    mysqlstate.AccountID  `json:"account"`
	User       string                `json:"user,omitempty"`
	Database   string                `json:"database,omitempty"`
	Pattern    string                `json:"pattern,omitempty"`
	Table      string                `json:"table,omitempty"`
	Column     string                `json:"column,omitempty"`
	Privileges []string              `json:"privileges,omitempty"`
	Role       *mysqlstate.AccountID `json:"role,omitempty"`
	Auth       *Auth                 `json:"auth,omitempty"`
	// Routine and RoutineType name a routine grant's routine (Database
	// its database); Proxied a proxy grant's account.
	Routine     string                `json:"routine,omitempty"`
	RoutineType string                `json:"routine_type,omitempty"`
	Proxied     *mysqlstate.AccountID `json:"proxied,omitempty"`
	// Reset names the options a reset puts back: password_lifetime, limits.
	Reset []string `json:"reset,omitempty"`
	// Objects are what a locked account still defines.
	Objects []mysqlstate.StoredObject `json:"objects,omitempty"`
	// Session and Via are an ended session and how it is ended.
	Session *mysqlstate.Session `json:"session,omitempty"`
	Via     Kill                `json:"via,omitempty"`
	Summary string              `json:"summary"`
}

// MarshalJSON writes the change as one flat object.
func (c Change) MarshalJSON() ([]byte, error) {
	w := wireChange{Action: c.Action(), Account: c.Account, User: c.User, Summary: c.Summary}
	switch op := c.Op.(type) {
	case NewAccount:
		w.Auth = &op.Auth
	case SetAuth:
		w.Auth = &op.Auth
	case RevokeRoleGrant:
		w.Role = &op.Role
	case RevokeGlobal:
		w.Privileges = op.Privileges
	case RevokeDatabase:
		w.Database, w.Pattern, w.Privileges = op.Database, op.Pattern, op.Privileges
	case RevokeTable:
		w.Database, w.Pattern, w.Table, w.Privileges = op.Database, op.Pattern, op.Table, op.Privileges
	case RevokeColumn:
		w.Database, w.Pattern, w.Table, w.Column, w.Privileges = op.Database, op.Pattern, op.Table, op.Column, op.Privileges
	case GrantDatabase:
		w.Database, w.Pattern, w.Privileges = op.Database, op.Pattern, op.Privileges
	case RevokeRoutine:
		w.Database, w.Routine, w.RoutineType, w.Privileges = op.Database, op.Routine, op.Type, op.Privileges
	case RevokeProxy:
		w.Proxied = &op.Proxied
	case Reset:
		if op.PasswordLifetime {
			w.Reset = append(w.Reset, resetLifetime)
		}
		if op.Limits {
			w.Reset = append(w.Reset, resetLimits)
		}
	case ClearDefaults:
	case Drop:
	case Lock:
		w.Objects = op.Objects
	case Disconnect:
		w.Session, w.Via = &op.Session, op.Via
	default:
		return nil, fmt.Errorf("change %q: no operation", c.Summary)
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads a change written by MarshalJSON, refusing a
// combination of fields that no kind of change has.
func (c *Change) UnmarshalJSON(data []byte) error {
	var w wireChange
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	op, err := w.op()
	if err != nil {
		return fmt.Errorf("change %s of %s: %w", w.Action, w.Account, err)
	}
	*c = Change{Account: w.Account, User: w.User, Summary: w.Summary, Op: op}
	return nil
}

// The names of the options a Reset puts back.
const (
	resetLifetime = "password_lifetime"
	resetLimits   = "limits"
)

func (w *wireChange) op() (Op, error) {
	ref := DatabaseRef{Database: w.Database, Pattern: w.Pattern}
	scoped := w.Pattern != "" || w.Table != "" || w.Column != ""
	// extra is a field that only some kinds have.
	extra := w.Routine != "" || w.RoutineType != "" || w.Proxied != nil || len(w.Reset) > 0 || len(w.Objects) > 0 ||
		w.Session != nil || w.Via != ""
	if extra {
		return w.extraOp()
	}
	switch w.Action {
	case CreateUser, AlterAuth:
		if w.Auth == nil || scoped || len(w.Privileges) > 0 || w.Role != nil {
			return nil, errors.New("wants an auth and nothing else")
		}
		if w.Action == CreateUser {
			return NewAccount{Auth: *w.Auth}, nil
		}
		return SetAuth{Auth: *w.Auth}, nil
	case RevokeRole:
		if w.Role == nil || scoped || len(w.Privileges) > 0 || w.Auth != nil {
			return nil, errors.New("wants a role and nothing else")
		}
		return RevokeRoleGrant{Role: *w.Role}, nil
	case Grant:
		if w.Pattern == "" || w.Table != "" || w.Column != "" || len(w.Privileges) == 0 || w.Role != nil || w.Auth != nil {
			return nil, errors.New("wants a database pattern and privileges, nothing else")
		}
		return GrantDatabase{DatabaseRef: ref, Privileges: w.Privileges}, nil
	case Revoke:
		if len(w.Privileges) == 0 || w.Role != nil || w.Auth != nil {
			return nil, errors.New("wants privileges and no role or auth")
		}
		switch {
		case !scoped:
			return RevokeGlobal{Privileges: w.Privileges}, nil
		case w.Pattern == "":
			return nil, errors.New("a table or column without a database")
		case w.Table == "" && w.Column != "":
			return nil, errors.New("a column without a table")
		case w.Table == "":
			return RevokeDatabase{DatabaseRef: ref, Privileges: w.Privileges}, nil
		case w.Column == "":
			return RevokeTable{DatabaseRef: ref, Table: w.Table, Privileges: w.Privileges}, nil
		}
		return RevokeColumn{DatabaseRef: ref, Table: w.Table, Column: w.Column, Privileges: w.Privileges}, nil
	case DropUser, ClearDefaultRoles:
		if scoped || len(w.Privileges) > 0 || w.Role != nil || w.Auth != nil {
			return nil, errors.New("wants nothing but the account")
		}
		if w.Action == ClearDefaultRoles {
			return ClearDefaults{}, nil
		}
		return Drop{}, nil
	}
	return nil, fmt.Errorf("unknown action %q", w.Action)
}

// extraOp reads the kinds whose fields the first kinds do not have.
func (w *wireChange) extraOp() (Op, error) {
	// Each kind has exactly its own fields; count what is set.
	set := 0
	for _, b := range []bool{w.Pattern != "", w.Table != "", w.Column != "", w.Role != nil, w.Auth != nil} {
		if b {
			set++
		}
	}
	only := func(ok bool, what string) error {
		if !ok || set > 0 {
			return fmt.Errorf("wants %s and nothing else", what)
		}
		return nil
	}
	switch w.Action {
	case Revoke:
		switch {
		case w.Routine != "":
			if err := only(w.Database != "" && (w.RoutineType == "PROCEDURE" || w.RoutineType == "FUNCTION") && len(w.Privileges) > 0 &&
				w.Proxied == nil && len(w.Reset) == 0 && len(w.Objects) == 0 && w.Session == nil && w.Via == "",
				"a database, a routine, its type and privileges"); err != nil {
				return nil, err
			}
			return RevokeRoutine{Database: w.Database, Routine: w.Routine, Type: w.RoutineType, Privileges: w.Privileges}, nil
		case w.Proxied != nil:
			if err := only(w.Database == "" && w.RoutineType == "" && len(w.Privileges) == 0 && len(w.Reset) == 0 &&
				len(w.Objects) == 0 && w.Session == nil && w.Via == "", "a proxied account"); err != nil {
				return nil, err
			}
			return RevokeProxy{Proxied: *w.Proxied}, nil
		}
	case ResetOptions:
		var r Reset
		for _, o := range w.Reset {
			switch o {
			case resetLifetime:
				r.PasswordLifetime = true
			case resetLimits:
				r.Limits = true
			default:
				return nil, fmt.Errorf("unknown option %q to reset", o)
			}
		}
		if err := only(w.Database == "" && w.Routine == "" && w.RoutineType == "" && w.Proxied == nil && len(w.Privileges) == 0 &&
			len(w.Objects) == 0 && w.Session == nil && w.Via == "", "options to reset"); err != nil {
			return nil, err
		}
		return r, nil
	case LockAccount:
		if err := only(w.Database == "" && w.Routine == "" && w.RoutineType == "" && w.Proxied == nil && len(w.Privileges) == 0 &&
			len(w.Reset) == 0 && w.Session == nil && w.Via == "", "the objects it defines"); err != nil {
			return nil, err
		}
		return Lock{Objects: w.Objects}, nil
	case EndSession:
		if err := only(w.Session != nil && (w.Via == KillConnection || w.Via == RDSKill) && w.Database == "" && w.Routine == "" &&
			w.RoutineType == "" && w.Proxied == nil && len(w.Privileges) == 0 && len(w.Reset) == 0 && len(w.Objects) == 0,
			"a session and how to end it"); err != nil {
			return nil, err
		}
		return Disconnect{Session: *w.Session, Via: w.Via}, nil
	}
	return nil, fmt.Errorf("action %q with fields it does not have", w.Action)
}
