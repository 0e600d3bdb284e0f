"""Real-name two-factor identity check (实名认证, 姓名 + 身份证号; IH-06)."""
