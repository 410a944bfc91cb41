"""Imports every area's tables so that Base.metadata is complete (migrations, tests)."""

from minimarket import store_settings  # noqa: F401
from minimarket.accounts import models as accounts_models  # noqa: F401
from minimarket.alerts import models as alerts_models  # noqa: F401
from minimarket.catalog import models as catalog_models  # noqa: F401
from minimarket.catalog import price_history  # noqa: F401
from minimarket.db import Base
from minimarket.invoices import models as invoices_models  # noqa: F401
from minimarket.platform import idempotency as idempotency_models  # noqa: F401
from minimarket.platform import secrets_models  # noqa: F401
from minimarket.pricing import models as pricing_models  # noqa: F401
from minimarket.purchasing import models as purchasing_models  # noqa: F401
from minimarket.reports import models as reports_models  # noqa: F401
from minimarket.stock import models as stock_models  # noqa: F401
from minimarket.suppliers import models as suppliers_models  # noqa: F401

metadata = Base.metadata
