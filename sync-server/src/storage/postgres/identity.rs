//! Who is who, on PostgreSQL: users, devices, tokens, enrolment codes,
//! console sessions, the audit log, per-device counters.

use field_core::model::ActorId;
use tokio_postgres::Row;

use super::{PgStorage, actor_of};
use crate::storage::{AuditEntry, ConsoleSession, Device, Identity, Principal, Result, Role};
use crate::storage::{StorageError, User, invalid};

const USER_COLUMNS: &str = "id, name, role, company, cells, disabled";

fn user_of(r: &Row) -> User {
    User {
        id: r.get(0),
        name: r.get(1),
        role: Role::parse(r.get::<_, &str>(2)).unwrap_or(Role::Collector),
        company: r.get(3),
        cells: serde_json::from_str(r.get::<_, &str>(4)).unwrap_or_default(),
        disabled: r.get(5),
    }
}

fn bytes(a: &ActorId) -> &[u8] {
    a.as_bytes().as_slice()
}

impl Identity for PgStorage {
    fn create_user(
        &self,
        name: &str,
        role: Role,
        company: Option<&str>,
        cells: &[String],
    ) -> Result<User> {
        let user = crate::storage::new_user(name, role, company, cells)?;
        let cells = serde_json::to_string(&user.cells).unwrap_or_default();
        let now = self.now_ms();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO users (id, name, role, company, cells, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&user.id, &user.name, &role.as_str(), &user.company, &cells, &now],
            )?;
            Ok(())
        })?;
        Ok(user)
    }

    fn users(&self) -> Result<Vec<User>> {
        self.read(|tx| {
            Ok(tx
                .query(
                    &format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_ms, id"),
                    &[],
                )?
                .iter()
                .map(user_of)
                .collect())
        })
    }

    fn devices_of(&self, user_id: &str) -> Result<Vec<Device>> {
        self.read(|tx| {
            tx.query(
                "SELECT actor, user_id, name, revoked FROM devices WHERE user_id = $1 ORDER BY enrolled_ms",
                &[&user_id],
            )?
            .iter()
            .map(|r| {
                Ok(Device {
                    actor: actor_of(r.get::<_, &[u8]>(0))?,
                    user_id: r.get(1),
                    name: r.get(2),
                    revoked: r.get(3),
                })
            })
            .collect()
        })
    }

    fn add_enrolment(&self, code_hash: &str, user_id: &str, expires_ms: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO enrolments (code_hash, user_id, expires_ms) VALUES ($1, $2, $3)",
                &[&code_hash, &user_id, &expires_ms],
            )?;
            Ok(())
        })
    }

    fn redeem_enrolment(
        &self,
        code_hash: &str,
        actor: ActorId,
        device_name: Option<&str>,
        token_hash: &str,
        now: i64,
    ) -> Result<User> {
        self.write(|tx| {
            // The code's row is locked: of two devices redeeming it at once
            // on two instances, one gets it.
            let row = tx.query_opt(
                "SELECT user_id, expires_ms, used_ms FROM enrolments WHERE code_hash = $1 FOR UPDATE",
                &[&code_hash],
            )?;
            let Some(row) = row else {
                return Err(invalid("code", "unknown enrolment code"));
            };
            let (user_id, expires, used): (String, i64, Option<i64>) = (row.get(0), row.get(1), row.get(2));
            if used.is_some() {
                return Err(invalid("code", "this enrolment code was already used"));
            }
            if expires < now {
                return Err(invalid("code", "this enrolment code has expired"));
            }
            if tx
                .query_opt("SELECT 1 FROM devices WHERE actor = $1", &[&bytes(&actor)])?
                .is_some()
            {
                return Err(invalid(
                    "actor",
                    "this device is already enrolled; a wiped device must mint a new actor id",
                ));
            }
            let user = user_of(&tx.query_one(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
                &[&user_id],
            )?);
            if user.disabled {
                return Err(invalid("code", "this user is disabled"));
            }
            tx.execute(
                "UPDATE enrolments SET used_ms = $1 WHERE code_hash = $2",
                &[&now, &code_hash],
            )?;
            tx.execute(
                "INSERT INTO devices (actor, user_id, name, enrolled_ms) VALUES ($1, $2, $3, $4)",
                &[&bytes(&actor), &user_id, &device_name, &now],
            )?;
            tx.execute(
                "INSERT INTO tokens (hash, user_id, actor) VALUES ($1, $2, $3)",
                &[&token_hash, &user_id, &bytes(&actor)],
            )?;
            Ok(user)
        })
    }

    fn add_user_token(&self, token_hash: &str, user_id: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tokens (hash, user_id, actor) VALUES ($1, $2, NULL)",
                &[&token_hash, &user_id],
            )?;
            Ok(())
        })
    }

    fn principal(&self, token_hash: &str) -> Result<Option<Principal>> {
        self.read(|tx| {
            let row = tx.query_opt(
                "SELECT u.id, u.name, u.role, u.company, u.cells, u.disabled, t.actor, COALESCE(d.revoked, FALSE)
                 FROM tokens t JOIN users u ON u.id = t.user_id LEFT JOIN devices d ON d.actor = t.actor
                 WHERE t.hash = $1",
                &[&token_hash],
            )?;
            let Some(r) = row else {
                return Ok(None);
            };
            let user = user_of(&r);
            if user.disabled || r.get::<_, bool>(7) {
                return Ok(None);
            }
            Ok(Some(Principal {
                user,
                token_hash: token_hash.to_string(),
                device: r.get::<_, Option<&[u8]>>(6).map(actor_of).transpose()?,
            }))
        })
    }

    fn open_session(&self, s: &ConsoleSession) -> Result<()> {
        let now = crate::storage::wall_clock_ms();
        self.write(|tx| {
            tx.execute("DELETE FROM console_sessions WHERE expires_ms <= $1", &[&now])?;
            tx.execute(
                "INSERT INTO console_sessions (id_hash, token_hash, csrf, expires_ms) VALUES ($1, $2, $3, $4)",
                &[&s.id_hash, &s.token_hash, &s.csrf, &s.expires_ms],
            )?;
            Ok(())
        })
    }

    fn session(&self, id_hash: &str) -> Result<Option<ConsoleSession>> {
        let now = crate::storage::wall_clock_ms();
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT id_hash, token_hash, csrf, expires_ms FROM console_sessions
                     WHERE id_hash = $1 AND expires_ms > $2",
                    &[&id_hash, &now],
                )?
                .map(|r| ConsoleSession {
                    id_hash: r.get(0),
                    token_hash: r.get(1),
                    csrf: r.get(2),
                    expires_ms: r.get(3),
                }))
        })
    }

    fn close_session(&self, id_hash: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM console_sessions WHERE id_hash = $1",
                &[&id_hash],
            )?;
            Ok(())
        })
    }

    fn expire_sessions(&self, now_ms: i64) -> Result<usize> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM console_sessions WHERE expires_ms <= $1",
                &[&now_ms],
            )? as usize)
        })
    }

    fn count_sessions(&self, now_ms: i64) -> Result<u64> {
        self.read(|tx| {
            Ok(tx
                .query_one(
                    "SELECT COUNT(*) FROM console_sessions WHERE expires_ms > $1",
                    &[&now_ms],
                )?
                .get::<_, i64>(0) as u64)
        })
    }

    fn revoke_device(&self, actor: ActorId) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE devices SET revoked = TRUE WHERE actor = $1",
                &[&bytes(&actor)],
            )? == 1)
        })
    }

    fn set_user_disabled(&self, user_id: &str, disabled: bool) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE users SET disabled = $2 WHERE id = $1",
                &[&user_id, &disabled],
            )? == 1)
        })
    }

    fn revoke_codes(&self, user_id: &str, code_hash: Option<&str>) -> Result<usize> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM enrolments WHERE user_id = $1 AND used_ms IS NULL AND ($2::text IS NULL OR code_hash = $2)",
                &[&user_id, &code_hash],
            )? as usize)
        })
    }

    fn pending_codes(&self, user_id: &str, now_ms: i64) -> Result<usize> {
        self.read(|tx| {
            Ok(tx
                .query_one(
                    "SELECT count(*) FROM enrolments WHERE user_id = $1 AND used_ms IS NULL AND expires_ms >= $2",
                    &[&user_id, &now_ms],
                )?
                .get::<_, i64>(0) as usize)
        })
    }

    fn reset_user_tokens(&self, user_id: &str, new_hash: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM tokens WHERE user_id = $1 AND actor IS NULL",
                &[&user_id],
            )?;
            tx.execute(
                "INSERT INTO tokens (hash, user_id, actor) VALUES ($1, $2, NULL)",
                &[&new_hash, &user_id],
            )?;
            Ok(())
        })
    }

    fn replace_user_token(&self, user_id: &str, old_hash: &str, new_hash: &str) -> Result<bool> {
        self.write(|tx| {
            let gone = tx.execute(
                "DELETE FROM tokens WHERE hash = $1 AND user_id = $2 AND actor IS NULL",
                &[&old_hash, &user_id],
            )?;
            if gone != 1 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO tokens (hash, user_id, actor) VALUES ($1, $2, NULL)",
                &[&new_hash, &user_id],
            )?;
            Ok(true)
        })
    }

    fn audit(&self, e: &AuditEntry) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO audit (at_ms, by_user, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
                &[&e.at.millis(), &e.by, &e.action, &e.target, &e.detail],
            )?;
            Ok(())
        })
    }

    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|tx| {
            tx.query(
                "SELECT at_ms, by_user, action, target, detail FROM audit ORDER BY seq DESC LIMIT $1",
                &[&(limit.min(i64::MAX as usize) as i64)],
            )?
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: field_core::model::Timestamp::from_millis("at", r.get(0))?,
                    by: r.get(1),
                    action: r.get(2),
                    target: r.get(3),
                    detail: r.get(4),
                })
            })
            .collect()
        })
    }

    fn device(&self, actor: ActorId) -> Result<Option<Device>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT user_id, name, revoked FROM devices WHERE actor = $1",
                    &[&bytes(&actor)],
                )?
                .map(|r| Device {
                    actor,
                    user_id: r.get(0),
                    name: r.get(1),
                    revoked: r.get(2),
                }))
        })
    }

    fn succeed_device(
        &self,
        previous: ActorId,
        next: ActorId,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<()> {
        self.write(|tx| {
            let r = tx
                .query_opt("SELECT user_id, name FROM devices WHERE actor = $1", &[&bytes(&previous)])?
                .ok_or_else(|| StorageError::NotFound("no such device".into()))?;
            let (user_id, name): (String, Option<String>) = (r.get(0), r.get(1));
            tx.execute(
                "INSERT INTO devices (actor, user_id, name, enrolled_ms, successor_of) VALUES ($1, $2, $3, $4, $5)",
                &[&bytes(&next), &user_id, &name, &now_ms, &bytes(&previous)],
            )?;
            let moved = tx.execute(
                "UPDATE tokens SET actor = $1 WHERE hash = $2 AND actor = $3",
                &[&bytes(&next), &token_hash, &bytes(&previous)],
            )?;
            if moved != 1 {
                return Err(invalid("token", "does not belong to this device"));
            }
            Ok(())
        })
    }

    fn charge_photo_bytes(&self, device: ActorId, day: i64, add: u64, cap: u64) -> Result<bool> {
        let add = add.min(i64::MAX as u64) as i64;
        let cap = cap.min(i64::MAX as u64) as i64;
        // One statement: the row lock makes concurrent uploads on several
        // instances add up, never both slip under the cap.
        if add > cap {
            return Ok(false);
        }
        self.write(|tx| {
            Ok(tx.execute(
                "INSERT INTO photo_bytes (actor, day, bytes) VALUES ($1, $2, $3)
                 ON CONFLICT (actor, day) DO UPDATE SET bytes = photo_bytes.bytes + excluded.bytes
                 WHERE photo_bytes.bytes + excluded.bytes <= $4",
                &[&bytes(&device), &day, &add, &cap],
            )? == 1)
        })
    }

    fn staff_actor(&self, user_id: &str) -> Result<ActorId> {
        self.write(|tx| {
            let fresh = uuid::Uuid::new_v4();
            // The first caller on any instance mints it; everyone reads that one.
            tx.execute(
                "UPDATE users SET actor = $1 WHERE id = $2 AND actor IS NULL",
                &[&bytes(&fresh), &user_id],
            )?;
            let r = tx
                .query_opt("SELECT actor FROM users WHERE id = $1", &[&user_id])?
                .ok_or_else(|| StorageError::NotFound(format!("user {user_id}")))?;
            actor_of(r.get::<_, Option<&[u8]>>(0).unwrap_or_default())
        })
    }

    fn set_user_cells(&self, user_id: &str, cells: &[String]) -> Result<()> {
        let cells = serde_json::to_string(cells).unwrap_or_default();
        self.write(|tx| {
            tx.execute(
                "UPDATE users SET cells = $1 WHERE id = $2",
                &[&cells, &user_id],
            )?;
            Ok(())
        })
    }
}
