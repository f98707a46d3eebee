module github.com/dbusers/dbusers

go 1.26
