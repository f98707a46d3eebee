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
	Summary    string                `json:"summary"`
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
	case Drop:
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

func (w *wireChange) op() (Op, error) {
	ref := DatabaseRef{Database: w.Database, Pattern: w.Pattern}
	scoped := w.Pattern != "" || w.Table != "" || w.Column != ""
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
	case DropUser:
		if scoped || len(w.Privileges) > 0 || w.Role != nil || w.Auth != nil {
			return nil, errors.New("wants nothing but the account")
		}
		return Drop{}, nil
	}
	return nil, fmt.Errorf("unknown action %q", w.Action)
}
