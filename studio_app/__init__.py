"""Studio Catalog: catalog-ready e-commerce images from studio photos.

Packages:
    studio_app.core  plain-Python domain model (result documents, session, export,
                     hot-folder logic, the CLI's processing path). Never imports Qt.
    studio_app.gui   the PySide6 desktop application, observing and editing core.
"""

__version__ = "0.1.0"
