"""Operations: health probes, metrics, middleware and the serve/migrate commands."""
